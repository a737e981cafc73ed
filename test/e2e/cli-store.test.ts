/**
 * The CLI against the S3 store, as real processes: submitting a file already in the bucket,
 * streaming its results back, purging it; and no command waiting forever on a batch whose
 * workflow failed, was terminated or timed out, whatever its last progress said.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WORKFLOW_TYPE, storeFromUrl, toJsonlInputLines } from '../../src';
import { freePort } from '../../src/testing/dev-server';
import { createTestBucket } from '../../src/testing/s3-server';
import { startTestContext, type TestContext } from '../helpers/context';
import { spawnCli } from '../helpers/processes';
import { waitFor } from '../helpers/wait';

const endpoint = process.env.TEST_S3_ENDPOINT!;

function batchFile(count: number, prefix: string): { file: string; ids: string[] } {
  const requests = Array.from({ length: count }, (_, i) => ({
    id: `${prefix}-${i}`,
    messages: [{ role: 'user' as const, content: `Pergunta ${i}` }],
    maxTokens: 10,
  }));
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'mb-cli-')), 'batch.jsonl');
  writeFileSync(file, toJsonlInputLines(requests, 'short'));
  return { file, ids: requests.map((r) => r.id) };
}

describe('CLI on the S3 store', () => {
  const bucket = `cli-${randomUUID().slice(0, 8)}`;
  const storeUrl = `s3://${bucket}/batches`;
  let ctx: TestContext;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    await createTestBucket(endpoint, bucket);
    ctx = await startTestContext({ latencyMs: 0 }, { store: storeFromUrl(storeUrl, { s3: { endpoint } }) });
    env = {
      TEMPORAL_ADDRESS: process.env.TEST_TEMPORAL_ADDRESS,
      TEMPORAL_TASK_QUEUE: ctx.taskQueue,
      MARITACA_STORE_URL: storeUrl,
      MARITACA_S3_ENDPOINT: endpoint,
      MARITACA_RESULTS_DIR: '',
    };
  });
  afterAll(async () => {
    await ctx?.close();
  });

  test('submit s3://… runs a file already in the bucket; results stream back in order; purge deletes what the batch wrote', async () => {
    const { file, ids } = batchFile(1200, 'cli');
    const objectUrl = await storeFromUrl(`s3://${bucket}/inbox`, { s3: { endpoint } }).putRequests(
      'mine',
      file,
    );
    const batchId = `cli-s3-${randomUUID()}`;
    const submit = spawnCli(
      ['submit', objectUrl, '--id', batchId, '--auto-approve-below', '100', '--json'],
      env,
    );
    expect(await submit.exited).toBe(0);
    expect(JSON.parse(submit.output().trim().split('\n').at(-1)!)).toMatchObject({ batchId });

    const watch = spawnCli(['status', batchId, '--watch'], env);
    expect(await watch.exited).toBe(0);
    const results = spawnCli(['results', batchId], env);
    expect(await results.exited).toBe(0);
    const lines = results
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'));
    expect(lines.map((l) => (JSON.parse(l) as { custom_id: string }).custom_id)).toEqual(ids);
    expect(results.output()).toContain('1200 result(s), 0 failed');

    const purge = spawnCli(['purge', batchId], env);
    expect(await purge.exited).toBe(0);
    // Three pages of outcomes; the input object was the user's and stays.
    expect(purge.output()).toMatch(/Deleted 3 object\(s\)/);
    expect(await storeFromUrl(storeUrl, { s3: { endpoint } }).batchObjects(batchId)).toEqual([]);
  }, 180_000);

  test('submit refuses an object that does not exist before anything starts', async () => {
    const missing = `s3://${bucket}/inbox/none.jsonl`;
    const submit = spawnCli(['submit', missing, '--auto-approve-below', '1'], env);
    expect(await submit.exited).not.toBe(0);
    expect(submit.output()).toContain(missing);
  });

  test('status --watch ends with the reason when the batch is terminated while it waits for approval', async () => {
    const { file } = batchFile(3, 'term');
    const batchId = `cli-term-${randomUUID()}`;
    const submit = spawnCli(['submit', file, '--id', batchId], env);
    expect(await submit.exited).toBe(0);
    const watch = spawnCli(['status', batchId, '--watch', '--interval', '50'], env);
    await watch.waitForLine(/awaiting_approval/);
    await ctx.temporal.workflow.getHandle(batchId).terminate('ops cleanup after a bad deploy');
    expect(await watch.exited).toBe(1);
    expect(watch.output()).toMatch(/terminated.*ops cleanup after a bad deploy/);
  });

  test('status --watch --json ends with the reason when the batch times out', async () => {
    const batchId = `cli-timeout-${randomUUID()}`;
    await ctx.temporal.workflow.start(WORKFLOW_TYPE, {
      taskQueue: ctx.taskQueue,
      workflowId: batchId,
      workflowExecutionTimeout: '3 seconds',
      args: [{ requests: [{ messages: [{ role: 'user', content: 'Oi' }] }] }],
    });
    const watch = spawnCli(['status', batchId, '--watch', '--json', '--interval', '50'], env);
    expect(await watch.exited).toBe(1);
    expect(watch.output()).toMatch(/timed out/);
  });

  test("submit ends with the batch's own failure when the workers cannot reach the store", async () => {
    // Workers whose store points at a closed port: every read of the uploaded file fails.
    const closed = `http://127.0.0.1:${await freePort()}`;
    const broken = await startTestContext(
      { latencyMs: 0 },
      { store: storeFromUrl(storeUrl, { s3: { endpoint: closed } }) },
    );
    try {
      const { file } = batchFile(1500, 'unreachable');
      const submit = spawnCli(['submit', file, '--auto-approve-below', '100'], {
        ...env,
        TEMPORAL_TASK_QUEUE: broken.taskQueue,
      });
      const code = await waitFor(
        async () => submit.child.exitCode,
        (c) => c !== null,
        { timeoutMs: 120_000, intervalMs: 200, what: 'submit to end' },
      );
      expect(code).toBe(1);
      expect(submit.output()).toMatch(/failed: cannot read s3:\/\//);
    } finally {
      await broken.close();
    }
  }, 180_000);
});
