import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { MaritacaBatchClient } from '../../src';
import { startFakeMaritaca, type FakeMaritacaServer } from '../../src/testing/fake-maritaca';
import { questions } from '../helpers/context';
import { freePort } from '../../src/testing/dev-server';
import { spawnCli, type Spawned } from '../helpers/processes';
import { waitFor } from '../helpers/wait';

const KEY = 'sk-operations-secret-31337';

describe('operating the worker: metrics, graceful shutdown, secrets in logs', () => {
  let fake: FakeMaritacaServer;
  let connection: Connection;
  let batches: MaritacaBatchClient;
  const taskQueue = `ops-${randomUUID()}`;
  const started: Spawned[] = [];

  const worker = (env: NodeJS.ProcessEnv = {}): Spawned => {
    const spawned = spawnCli(['worker'], {
      TEMPORAL_ADDRESS: process.env.TEST_TEMPORAL_ADDRESS,
      TEMPORAL_TASK_QUEUE: taskQueue,
      MARITACA_API_KEY: KEY,
      MARITACA_BASE_URL: fake.url,
      ...env,
    });
    started.push(spawned);
    return spawned;
  };

  beforeAll(async () => {
    fake = await startFakeMaritaca({ apiKey: KEY, latencyMs: 1500 });
    connection = await Connection.connect({ address: process.env.TEST_TEMPORAL_ADDRESS! });
    batches = new MaritacaBatchClient({ client: new Client({ connection }), taskQueue });
  });
  afterAll(async () => {
    for (const w of started) await w.stop();
    await connection?.close();
    await fake?.close();
  });

  test('exposes Temporal runtime metrics for Prometheus', async () => {
    const port = await freePort();
    const w = worker({ MARITACA_METRICS_ADDRESS: `127.0.0.1:${port}` });
    await w.waitForLine(new RegExp(`Prometheus metrics at http://127\\.0\\.0\\.1:${port}/metrics`));
    const text = await waitFor(
      () =>
        fetch(`http://127.0.0.1:${port}/metrics`)
          .then((r) => r.text())
          .catch(() => ''),
      (body) => body.includes('temporal_'),
      { what: 'metrics to be served' },
    );
    expect(text).toMatch(/temporal_\w+/);
    await w.stop();
  });

  test('SIGTERM lets calls in flight finish; another worker completes the batch; nothing is lost', async () => {
    const first = worker();
    await first.waitForLine(/Worker polling task queue/);
    const handle = await batches.start(questions(6), { maxConcurrency: 3, autoApproveBelow: 10 });
    await waitFor(
      async () => fake.stats(),
      (s) => s.currentConcurrency === 3,
      { what: 'three calls in flight' },
    );
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    // The three calls in flight at SIGTERM were allowed to finish, not abandoned.
    expect(fake.stats().byStatus['200']).toBeGreaterThanOrEqual(3);

    const second = worker();
    await second.waitForLine(/Worker polling task queue/);
    expect((await handle.progress()).completed).toBeGreaterThanOrEqual(3);
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(result.results.map((r) => r.id)).toEqual(questions(6).map((q) => q.id));
    const stats = fake.stats();
    for (const q of questions(6)) expect(stats.byRequestId[`${handle.batchId}/${q.id}`]).toBe(1);

    // What the workers printed, across both, never shows the key.
    expect(first.output() + second.output()).not.toContain(KEY);
  }, 120_000);
});
