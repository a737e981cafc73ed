import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { MaritacaBatchClient } from '../../src';
import { questions } from '../helpers/context';
import { spawnCli, type Spawned } from '../helpers/processes';

const API_KEY = 'sk-e2e-cli-secret-424242';

describe('the fake-server and worker commands, as real processes configured by the environment', () => {
  let fake: Spawned;
  let worker: Spawned;
  let connection: Connection;
  let batches: MaritacaBatchClient;
  const taskQueue = `cli-${randomUUID()}`;

  beforeAll(async () => {
    fake = spawnCli(['fake-server', '--port', '0', '--api-key', API_KEY, '--latency-ms', '20']);
    const [, url] = await fake.waitForLine(/Fake Maritaca listening on (\S+)/);
    worker = spawnCli(['worker'], {
      TEMPORAL_ADDRESS: process.env.TEST_TEMPORAL_ADDRESS,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: taskQueue,
      MARITACA_API_KEY: API_KEY,
      MARITACA_BASE_URL: url,
    });
    await worker.waitForLine(/Worker polling task queue/);
    connection = await Connection.connect({ address: process.env.TEST_TEMPORAL_ADDRESS! });
    batches = new MaritacaBatchClient({ client: new Client({ connection }), taskQueue });
  });

  afterAll(async () => {
    await worker?.stop();
    await fake?.stop();
    await connection?.close();
  });

  test('runs a batch end to end and never prints the key', async () => {
    const handle = await batches.start(questions(6), { maxConcurrency: 3, autoApproveBelow: 10 });
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(result.results.map((r) => r.ok)).toEqual(Array(6).fill(true));
    expect(worker.output()).toContain(taskQueue);
    expect(worker.output()).not.toContain(API_KEY);
    expect(fake.output()).not.toContain(API_KEY);
  });

  test('the worker refuses to start without MARITACA_API_KEY, saying which variable is missing', async () => {
    const bare = spawnCli(['worker'], {
      TEMPORAL_ADDRESS: process.env.TEST_TEMPORAL_ADDRESS,
      MARITACA_API_KEY: '',
    });
    expect(await bare.exited).not.toBe(0);
    expect(bare.output()).toMatch(/MARITACA_API_KEY is not set/);
  });

  test('the worker names the address it could not reach', async () => {
    const lost = spawnCli(['worker'], { TEMPORAL_ADDRESS: '127.0.0.1:1', MARITACA_API_KEY: 'x' });
    expect(await lost.exited).not.toBe(0);
    expect(lost.output()).toContain('127.0.0.1:1');
  });

  test('fake-server rejects a bad flag value naming the flag', async () => {
    const bad = spawnCli(['fake-server', '--rpm', 'lots']);
    expect(await bad.exited).toBe(2);
    expect(bad.output()).toContain('--rpm');
  });
});
