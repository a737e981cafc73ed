/**
 * What the heartbeats buy, at the default interval (one heartbeat per 20 s of call, so a 6 s call
 * costs none): a cancelled batch reports `cancelled` within 30 s, and the calls of a worker killed
 * mid-call finish on another worker within 60 s.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { MaritacaBatchClient } from '../../src';
import { startFakeMaritaca, type FakeMaritacaServer } from '../../src/testing/fake-maritaca';
import { spawnCli, type Spawned } from '../helpers/processes';
import { waitFor } from '../helpers/wait';

const KEY = 'sk-heartbeat-bounds';

const requests = (n: number, prefix: string) =>
  Array.from({ length: n }, (_, i) => ({
    id: `${prefix}${i}`,
    messages: [{ role: 'user' as const, content: `Pergunta ${prefix}${i}` }],
    maxTokens: 20,
  }));

describe('cancel and crash bounds at the default heartbeat interval', () => {
  let fake: FakeMaritacaServer;
  let connection: Connection;
  let batches: MaritacaBatchClient;
  const workers: Spawned[] = [];
  const address = () => process.env.TEST_TEMPORAL_ADDRESS!;
  const taskQueue = `heartbeat-bounds-${randomUUID()}`;

  const startWorker = async (): Promise<Spawned> => {
    const worker = spawnCli(['worker'], {
      TEMPORAL_ADDRESS: address(),
      TEMPORAL_TASK_QUEUE: taskQueue,
      MARITACA_API_KEY: KEY,
      MARITACA_BASE_URL: fake.url,
    });
    workers.push(worker);
    await worker.waitForLine(/Worker polling/);
    return worker;
  };

  beforeAll(async () => {
    fake = await startFakeMaritaca({ apiKey: KEY, latencyMs: 8_000 });
    connection = await Connection.connect({ address: address() });
    batches = new MaritacaBatchClient({ client: new Client({ connection }), taskQueue });
  });
  afterAll(async () => {
    for (const w of workers) await w.stop();
    await connection?.close();
    await fake.close();
  });

  test('a cancel is reported within 30 s, calls in flight aborted', async () => {
    await startWorker();
    fake.configure({ latencyMs: 120_000 });
    const handle = await batches.start(requests(6, 'c'), { maxConcurrency: 3, autoApproveBelow: 10 });
    await waitFor(
      async () => fake.stats().currentConcurrency,
      (n) => n === 3,
      { what: '3 calls in flight' },
    );
    const cancelledAt = Date.now();
    await handle.cancel();
    const result = await handle.result();
    const tookMs = Date.now() - cancelledAt;
    console.log(`heartbeat-bounds: cancelled reported ${tookMs} ms after the cancel`);
    expect(result.status).toBe('cancelled');
    expect(tookMs).toBeLessThan(30_000);
    expect(result.unconfirmedCost ?? 0).toBeGreaterThan(0);
  }, 120_000);

  test("a killed worker's calls finish on another worker within 60 s", async () => {
    fake.reset();
    fake.configure({ latencyMs: 8_000 });
    const victim = workers.at(-1)!;
    const handle = await batches.start(requests(4, 'k'), { maxConcurrency: 4, autoApproveBelow: 10 });
    await waitFor(
      async () => fake.stats().currentConcurrency,
      (n) => n === 4,
      { what: '4 calls in flight' },
    );
    victim.child.kill('SIGKILL');
    await victim.exited;
    const killedAt = Date.now();
    await startWorker();
    const result = await handle.result();
    const tookMs = Date.now() - killedAt;
    console.log(`heartbeat-bounds: the killed worker's calls finished ${tookMs} ms after the kill`);
    expect(result.status).toBe('completed');
    expect(result.results.every((r) => r.ok)).toBe(true);
    expect(tookMs).toBeLessThan(60_000);
  }, 180_000);
});
