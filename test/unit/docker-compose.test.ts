/**
 * Checks the Docker deployment files: docker-compose.yml (validated by `docker-compose config`
 * when that command is installed, by a text check otherwise), the scripts it mounts, and the
 * worker Dockerfile. Needs no Docker daemon.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..', '..');
const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');
const DOCKERFILE = join(ROOT, 'Dockerfile');

const composeText = readFileSync(COMPOSE_FILE, 'utf8');
const dockerfileText = readFileSync(DOCKERFILE, 'utf8');

/** Services the stack needs, by role. */
const REQUIRED_SERVICES = {
  postgres: 'postgresql',
  schemaSetup: 'temporal-admin-tools',
  server: 'temporal',
  namespaceSetup: 'temporal-namespace-setup',
  ui: 'temporal-ui',
  worker: 'worker',
} as const;

const SEARCH_ATTRIBUTES = [
  'MaritacaBatchStatus:Keyword',
  'MaritacaEstimatedCost:Double',
  'MaritacaActualCost:Double',
  'MaritacaRequests:Int',
];

function composeEnv(apiKey: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // Variables a developer may have exported must not change what is being checked.
  for (const name of ['MARITACA_API_KEY', 'COMPOSE_FILE', 'COMPOSE_PROJECT_NAME', 'COMPOSE_PROFILES']) {
    delete env[name];
  }
  if (apiKey !== undefined) env.MARITACA_API_KEY = apiKey;
  return env;
}

function runCompose(args: string[], apiKey: string | undefined): SpawnSyncReturns<string> {
  return spawnSync('docker-compose', ['-f', COMPOSE_FILE, ...args], {
    cwd: ROOT,
    env: composeEnv(apiKey),
    encoding: 'utf8',
    timeout: 60_000,
  });
}

function hasDockerCompose(): boolean {
  const probe = spawnSync('docker-compose', ['version'], { encoding: 'utf8', timeout: 30_000 });
  return probe.error === undefined && probe.status === 0;
}

/**
 * Minimal YAML reader for one top-level mapping: the names of its direct children and each
 * child's text block. Enough for compose files written with consistent indentation (both this
 * repo's file and `docker-compose config` output).
 */
function topLevelBlock(yaml: string, key: string): Map<string, string> {
  const lines = yaml.split(/\r?\n/);
  const start = lines.findIndex((line) => line === `${key}:`);
  const children = new Map<string, string>();
  if (start < 0) return children;
  let indent: number | undefined;
  let current: string | undefined;
  let body: string[] = [];
  const flush = () => {
    if (current !== undefined) children.set(current, body.join('\n'));
  };
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    if (!/^\s/.test(line)) break; // next top-level key
    const lead = line.length - line.trimStart().length;
    indent ??= lead;
    const match = lead === indent ? /^\s*([A-Za-z0-9._-]+):\s*$/.exec(line) : null;
    if (match) {
      flush();
      current = match[1];
      body = [];
    } else {
      body.push(line);
    }
  }
  flush();
  return children;
}

function expectStackShape(yaml: string): void {
  const services = topLevelBlock(yaml, 'services');
  for (const name of Object.values(REQUIRED_SERVICES)) {
    expect(services.has(name)).toBe(true);
  }
  // No service may use the deprecated all-in-one image.
  for (const [name, body] of services) {
    expect({ name, usesAutoSetup: /temporalio\/auto-setup/.test(body) }).toEqual({
      name,
      usesAutoSetup: false,
    });
  }
  const image = (service: string) =>
    /^\s*image:\s*['"]?([^\s'"]+)/m.exec(services.get(service) ?? '')?.[1] ?? '';
  expect(image(REQUIRED_SERVICES.postgres)).toMatch(/^postgres:/);
  expect(image(REQUIRED_SERVICES.schemaSetup)).toMatch(/^temporalio\/admin-tools:/);
  expect(image(REQUIRED_SERVICES.server)).toMatch(/^temporalio\/server:/);
  expect(image(REQUIRED_SERVICES.namespaceSetup)).toMatch(/^temporalio\/admin-tools:/);
  expect(image(REQUIRED_SERVICES.ui)).toMatch(/^temporalio\/ui:/);

  // Start order: schema before server, server before namespace setup, setup before worker.
  expect(services.get(REQUIRED_SERVICES.server)).toMatch(
    /temporal-admin-tools:\s*\n\s*condition:\s*service_completed_successfully/,
  );
  expect(services.get(REQUIRED_SERVICES.namespaceSetup)).toMatch(
    /temporal:\s*\n\s*condition:\s*service_healthy/,
  );
  expect(services.get(REQUIRED_SERVICES.worker)).toMatch(
    /temporal-namespace-setup:\s*\n\s*condition:\s*service_completed_successfully/,
  );
  expect(services.get(REQUIRED_SERVICES.worker)).toMatch(/TEMPORAL_ADDRESS:\s*temporal:7233/);
  expect(services.get(REQUIRED_SERVICES.worker)).toMatch(/TEMPORAL_TASK_QUEUE:\s*maritaca-batch/);
}

describe('docker-compose.yml', () => {
  const composeAvailable = hasDockerCompose();

  beforeAll(() => {
    if (!composeAvailable) {
      console.warn(
        [
          '',
          '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!',
          '!! `docker-compose` is not installed: full validation of docker-compose.yml  !!',
          '!! (`docker-compose config`) was SKIPPED; only the raw file text is checked. !!',
          '!! Install it (Debian: apt-get install docker-compose) to validate fully.     !!',
          '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!',
          '',
        ].join('\n'),
      );
    }
  });

  it('has the expected services, start order and no temporalio/auto-setup (raw text)', () => {
    expect(composeText).not.toMatch(/temporalio\/auto-setup/);
    // Compose-spec file: no obsolete top-level `version:` key.
    expect(composeText).not.toMatch(/^version:/m);
    expectStackShape(composeText);
  });

  it('registers the four custom search attributes with their types', () => {
    const setup = topLevelBlock(composeText, 'services').get(REQUIRED_SERVICES.namespaceSetup) ?? '';
    for (const pair of SEARCH_ATTRIBUTES) expect(setup).toContain(pair);
  });

  it('mounts files that exist', () => {
    for (const path of [
      'deploy/scripts/setup-postgres-schema.sh',
      'deploy/scripts/setup-namespace.sh',
      'deploy/dynamicconfig/development-sql.yaml',
    ]) {
      expect({ path, exists: existsSync(join(ROOT, path)) }).toEqual({ path, exists: true });
    }
    expect(composeText).toContain('./deploy/scripts:/scripts:ro');
    expect(composeText).toContain('./deploy/dynamicconfig:/etc/temporal/config/dynamicconfig:ro');
  });

  it('has setup scripts that parse as POSIX sh', () => {
    const sh = spawnSync('sh', ['-c', 'true']);
    if (sh.error !== undefined) {
      console.warn('`sh` not found: shell syntax check of deploy/scripts skipped');
      return;
    }
    for (const script of ['setup-postgres-schema.sh', 'setup-namespace.sh']) {
      const result = spawnSync('sh', ['-n', join(ROOT, 'deploy', 'scripts', script)], { encoding: 'utf8' });
      expect({ script, status: result.status, stderr: result.stderr }).toEqual({
        script,
        status: 0,
        stderr: '',
      });
    }
  });

  it('passes `docker-compose config` and resolves to the expected stack', () => {
    if (!composeAvailable) {
      console.warn('SKIPPED: `docker-compose config` validation (docker-compose not installed)');
      return;
    }
    const result = runCompose(['config'], 'dummy-key-for-compose-config-test');
    expect({ status: result.status, stderr: result.stderr }).toEqual({
      status: 0,
      stderr: expect.any(String),
    });
    expect(result.stdout).not.toMatch(/temporalio\/auto-setup/);
    expectStackShape(result.stdout);
    expect(result.stdout).toMatch(/MARITACA_API_KEY:\s*dummy-key-for-compose-config-test/);
    expect(result.stdout).toMatch(/MARITACA_BASE_URL:\s*https:\/\/chat\.maritaca\.ai\/api/);

    const services = runCompose(['config', '--services'], 'dummy-key-for-compose-config-test');
    expect(services.status).toBe(0);
    const names = services.stdout.split(/\r?\n/).filter(Boolean);
    expect(names).toEqual(expect.arrayContaining(Object.values(REQUIRED_SERVICES)));
  });

  it('refuses to resolve without MARITACA_API_KEY', () => {
    if (!composeAvailable) {
      console.warn('SKIPPED: MARITACA_API_KEY guard check (docker-compose not installed)');
      return;
    }
    if (existsSync(join(ROOT, '.env'))) {
      console.warn('SKIPPED: MARITACA_API_KEY guard check (a local .env may define it)');
      return;
    }
    const result = runCompose(['config'], undefined);
    expect(result.status).not.toBe(0);
    expect(`${result.stdout}${result.stderr}`).toMatch(/MARITACA_API_KEY/);
  });
});

describe('Dockerfile', () => {
  /** Instructions with line continuations joined, comments dropped. */
  const instructions = dockerfileText
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));

  it('runs the worker as its CMD', () => {
    const cmds = instructions.filter((line) => /^CMD\s/i.test(line));
    expect(cmds.length).toBeGreaterThan(0);
    const last = cmds[cmds.length - 1]!.replace(/^CMD\s+/i, '');
    expect(JSON.parse(last)).toEqual(['node', 'bin/maritaca-batch.js', 'worker']);
  });

  it('builds on Debian slim Node 20, installs production deps only, runs as `node`', () => {
    expect(dockerfileText).toMatch(/node:20-bookworm-slim/);
    expect(instructions.filter((line) => /^FROM\s/i.test(line)).length).toBeGreaterThanOrEqual(2);
    expect(dockerfileText).toMatch(/npm ci --omit=dev/);
    expect(dockerfileText).toMatch(/npm run build/);
    const users = instructions.filter((line) => /^USER\s/i.test(line));
    expect(users[users.length - 1]).toBe('USER node');
  });
});
