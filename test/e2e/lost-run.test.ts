/**
 * A run of calls lost with its worker, on a folder store: the answers its log already holds are
 * read back, so only the calls in flight at the kill reach Maritaca again, and the log leaves the
 * store once the batch's page is written.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { MaritacaBatchClient, storeFromUrl, toJsonlInputLines } from '../../src';
import { startFakeMaritaca, type FakeMaritacaServer } from '../../src/testing/fake-maritaca';
import { spawnCli, type Spawned } from '../helpers/processes';
import { waitFor } from '../helpers/wait';

const KEY = 'sk-lost-run';
// More than a batch keeps inline, so its outcomes live in the store and its pages are compacted.
const COUNT = 1200;
const RUNS = 4;
const CALLS_PER_RUN = 10;

describe('a run lost with its worker on a folder store', () => {
  let fake: FakeMaritacaServer;
  const workers: Spawned[] = [];

  beforeAll(async () => {
    fake = await startFakeMaritaca({ apiKey: KEY, latencyMs: 20 });
  });
  afterAll(async () => {
    for (const w of workers) await w.stop();
    await fake.close();
  });

  test('only the calls in flight are sent again; every request ends with one result', async () => {
    const address = process.env.TEST_TEMPORAL_ADDRESS!;
    const taskQueue = `lost-run-${randomUUID()}`;
    const storeUrl = pathToFileURL(mkdtempSync(path.join(tmpdir(), 'mb-lost-run-'))).href;
    const startWorker = async (): Promise<Spawned> => {
      const worker = spawnCli(['worker'], {
        TEMPORAL_ADDRESS: address,
        TEMPORAL_TASK_QUEUE: taskQueue,
        MARITACA_API_KEY: KEY,
        MARITACA_BASE_URL: fake.url,
        MARITACA_STORE_URL: storeUrl,
      });
      workers.push(worker);
      await worker.waitForLine(/Worker polling/);
      return worker;
    };
    const ids = Array.from({ length: COUNT }, (_, i) => `q${i}`);
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'mb-lost-run-in-')), 'batch.jsonl');
    writeFileSync(
      file,
      toJsonlInputLines(
        ids.map((id) => ({
          id,
          messages: [{ role: 'user' as const, content: `Pergunta ${id}` }],
          maxTokens: 16,
        })),
        'short',
      ),
    );
    const store = storeFromUrl(storeUrl);
    const connection = await Connection.connect({ address });
    const batches = new MaritacaBatchClient({ client: new Client({ connection }), taskQueue, store });
    try {
      const victim = await startWorker();
      // Four slots, each calling ten requests one after another per activity.
      const handle = await batches.startFromFile(file, {
        maxConcurrency: RUNS,
        callsPerActivity: CALLS_PER_RUN,
        heartbeatInterval: '1s',
        autoApproveBelow: 10,
      });
      const sent = (): number =>
        Object.keys(fake.stats().byRequestId).filter((k) => k.startsWith(`${handle.batchId}/`)).length;
      await waitFor(
        async () => sent(),
        (n) => n >= 400,
        { what: '400 calls' },
      );
      const objects = await store.batchObjects(handle.batchId);
      expect(objects.filter((u) => u.includes('/log-')).length).toBeGreaterThan(0);
      victim.child.kill('SIGKILL');
      await victim.exited;
      await startWorker();

      const result = await handle.result();
      expect(result.status).toBe('completed');
      const outcomes = [];
      for await (const outcome of handle.outcomes()) outcomes.push(outcome);
      expect(outcomes.map((o) => o.id)).toEqual(ids);
      expect(outcomes.every((o) => o.ok)).toBe(true);

      const counts = fake.stats().byRequestId;
      expect(Object.keys(counts).filter((k) => k.startsWith(`${handle.batchId}/`))).toHaveLength(COUNT);
      const twice = ids.filter((id) => (counts[`${handle.batchId}/${id}`] ?? 0) > 1);
      console.log(`lost-run: ${twice.length} of ${COUNT} calls sent twice after the kill (bound ${RUNS})`);
      // At most the one call each run had in flight; an answer already in a log is never asked again.
      expect(twice.length).toBeLessThanOrEqual(RUNS);
      expect(ids.every((id) => (counts[`${handle.batchId}/${id}`] ?? 0) >= 1)).toBe(true);

      const left = (await store.batchObjects(handle.batchId)).map((u) => u.slice(u.lastIndexOf('/') + 1));
      expect(left.filter((name) => name.startsWith('log-') || name.startsWith('outcome-'))).toEqual([]);
      expect(left.filter((name) => name.startsWith('page-'))).toHaveLength(3);
    } finally {
      await connection.close();
    }
  }, 180_000);
});
