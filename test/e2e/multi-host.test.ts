/**
 * A batch as a team deploys it: two workers and a client that share no disk (each in its own
 * mount namespace with a private tmpfs at the same path), the S3 test server as the only shared
 * storage. The client submits a 2,000-request file from its private disk; one worker is killed
 * in the middle of a page; the client reads every result back. Needs root (for `unshare -m` and
 * `mount`); elsewhere it is skipped with the reason printed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { S3_RUN_ANSWERS_PER_OBJECT, collectOutcomes, storeFromUrl, toJsonlInputLines } from '../../src';
import { startFakeMaritaca, type FakeMaritacaServer } from '../../src/testing/fake-maritaca';
import { createTestBucket } from '../../src/testing/s3-server';
import { CLI, spawnProcess, type Spawned } from '../helpers/processes';
import { waitFor } from '../helpers/wait';

const KEY = 'sk-multi-host-secret';
const COUNT = 2000;
const endpoint = process.env.TEST_S3_ENDPOINT!;

/** Why private disks cannot be made here, or null when they can. */
function cannotIsolate(dir: string): string | null {
  if (process.getuid?.() !== 0) return 'not root: unshare -m and mount need root';
  const probe = spawnSync(
    'unshare',
    ['-m', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs tmpfs "${dir}"`],
    {
      encoding: 'utf8',
    },
  );
  if (probe.error) return `unshare is not available: ${probe.error.message}`;
  if (probe.status !== 0) return `cannot mount a private tmpfs: ${probe.stderr.trim()}`;
  return null;
}

describe('two workers and a client on hosts that share no disk', () => {
  const hostDir = mkdtempSync(path.join(tmpdir(), 'mb-host-'));
  const reason = cannotIsolate(hostDir);
  const bucket = `multi-${randomUUID().slice(0, 8)}`;
  const storeUrl = `s3://${bucket}/batches`;
  let fake: FakeMaritacaServer;
  const workers: Spawned[] = [];

  /** The environment of a host: Temporal, the store and credentials, and nothing of this test's own. */
  function hostEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: hostDir,
      HOST_DIR: hostDir,
      CLI,
      TEMPORAL_ADDRESS: process.env.TEST_TEMPORAL_ADDRESS,
      TEMPORAL_TASK_QUEUE: `multi-host-${randomUUID()}`,
      MARITACA_STORE_URL: storeUrl,
      MARITACA_S3_ENDPOINT: endpoint,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_REGION: 'us-east-1',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...extra,
    };
    return env;
  }

  /** Runs `script` with its own mount namespace and a private tmpfs mounted at the shared path. */
  function onOwnHost(script: string, env: NodeJS.ProcessEnv, input?: string): Spawned {
    return spawnProcess(
      'unshare',
      [
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        `mount -t tmpfs tmpfs "$HOST_DIR" && cd "$HOST_DIR" && ${script}`,
      ],
      env,
      input,
    );
  }

  /** Files on a running process's private disk, seen from inside its namespace. */
  function privateFiles(pid: number): string[] {
    const out = execFileSync('nsenter', ['-t', String(pid), '-m', 'find', hostDir, '-type', 'f'], {
      encoding: 'utf8',
    });
    return out.split('\n').filter(Boolean);
  }

  beforeAll(async () => {
    if (reason) return;
    fake = await startFakeMaritaca({ apiKey: KEY, latencyMs: 30 });
    await createTestBucket(endpoint, bucket);
  });
  afterAll(async () => {
    for (const worker of workers) await worker.stop();
    await fake?.close();
  });

  test("2,000 requests from the client's private disk: one result per id, in input order; a worker killed mid-page loses nothing", async () => {
    if (reason) {
      console.warn(`SKIPPED: multi-host test (${reason})`);
      return;
    }
    const queue = hostEnv().TEMPORAL_TASK_QUEUE;
    const workerEnv = hostEnv({
      TEMPORAL_TASK_QUEUE: queue,
      MARITACA_API_KEY: KEY,
      MARITACA_BASE_URL: fake.url,
    });
    for (let i = 0; i < 2; i++) {
      const worker = onOwnHost('exec node "$CLI" worker', workerEnv);
      workers.push(worker);
      await worker.waitForLine(/Worker polling task queue/, 90_000);
    }

    const batchId = `multi-host-${randomUUID()}`;
    const ids = Array.from({ length: COUNT }, (_, i) => `mh-${i}`);
    const file = toJsonlInputLines(
      ids.map((id, i) => ({
        id,
        messages: [{ role: 'user' as const, content: `Pergunta ${i} do host cliente` }],
        maxTokens: 16,
      })),
      'openai',
    );
    const client = onOwnHost(
      'cat > batch.jsonl && node "$CLI" submit batch.jsonl --id "$BATCH_ID" --concurrency 20 --auto-approve-below 1000 --json' +
        ' && node "$CLI" status "$BATCH_ID" --watch --json > /dev/null && node "$CLI" results "$BATCH_ID"',
      hostEnv({ TEMPORAL_TASK_QUEUE: queue, BATCH_ID: batchId }),
      file,
    );

    // Kill one worker in the middle of the first page: calls in flight there are retried elsewhere.
    await waitFor(
      async () => fake.stats().totalRequests,
      (n) => n >= 250,
      { timeoutMs: 120_000, what: '250 calls' },
    );
    const victim = workers[0]!;
    victim.child.kill('SIGKILL');
    await victim.exited;

    expect(await client.exited).toBe(0);
    const lines = client
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{"id"'));
    const results = lines.map(
      (line) => JSON.parse(line) as { custom_id: string; response: { status_code: number } },
    );
    expect(results.map((r) => r.custom_id)).toEqual(ids);
    expect(results.every((r) => r.response.status_code === 200)).toBe(true);

    // Every request reached Maritaca at least once. Only calls cut off by the kill went twice: per
    // run lost (at most the 20 of the window), the call in flight and the answers its S3 log had
    // not written yet.
    const counts = fake.stats().byRequestId;
    let duplicates = 0;
    for (const id of ids) {
      const sent = counts[`${batchId}/${id}`] ?? 0;
      expect(sent).toBeGreaterThanOrEqual(1);
      duplicates += sent - 1;
    }
    console.log(
      `multi-host: ${duplicates} calls sent twice after the kill (bound ${20 * S3_RUN_ANSWERS_PER_OBJECT})`,
    );
    expect(duplicates).toBeLessThanOrEqual(20 * S3_RUN_ANSWERS_PER_OBJECT);

    // The store holds the upload and one object per page, each request exactly once.
    const store = storeFromUrl(storeUrl, { s3: { endpoint } });
    const objects = await store.batchObjects(batchId);
    expect(objects.filter((u) => u.includes('/page-'))).toHaveLength(COUNT / 500);
    expect(objects.filter((u) => u.includes('/outcome-') || u.includes('/log-'))).toHaveLength(0);
    const ref = {
      type: 'objects' as const,
      url: objects.find((u) => u.includes('/page-'))!.replace(/page-[^/]+$/, ''),
    };
    expect((await collectOutcomes(store.readOutcomes(ref))).map((o) => o.id)).toEqual(ids);

    // The surviving worker's private disk holds nothing of the batch.
    expect(privateFiles(workers[1]!.child.pid!)).toEqual([]);
  }, 600_000);
});
