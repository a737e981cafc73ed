import { createHash, randomUUID } from 'node:crypto';
import { Client } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../../src/activities';
import {
  createKeyLeaseActivity,
  keyLimiterWorkflowId,
  type KeyLeaseDemand,
  type KeyLeaseOptions,
} from '../../src/activities/key-lease';
import { keyLimiterStatusQuery, type KeyGrant, type KeyLease, type KeyLimiterResult } from '../../src/shared';
import { MaritacaBatchPlugin } from '../../src/worker';
import { startTestContext, TEST_API_KEY, type TestContext } from '../helpers/context';
import { historyText } from '../helpers/history';
import { waitFor } from '../helpers/wait';

/**
 * The key limiter against the suite's real dev server: batches (here, callers of the lease
 * activity, as a batch's workflow would call it) lease capacity of one key from one limiter
 * workflow hosted by a worker with the plugin. Windows are shortened to seconds so a test
 * covers several "minutes".
 */

/** A fresh key per test, so each test gets its own limiter. */
const newKey = () => `sk-limiter-${randomUUID()}`;

/** Runs the lease activity as the batch `batchId` would, each call a distinct activity. */
function leaser(options: KeyLeaseOptions, batchId: string) {
  const lease = createKeyLeaseActivity(options);
  let calls = 0;
  return (demand: Omit<KeyLeaseDemand, 'batchId'>): Promise<KeyLease> => {
    calls += 1;
    const env = new MockActivityEnvironment(
      {
        activityId: `lease-${calls}`,
        taskQueue: options.taskQueue ?? 'unset',
        workflowExecution: { workflowId: batchId, runId: 'run-1' },
      },
      options.client ? { client: options.client } : {},
    );
    return env.run(lease, demand);
  };
}

function grantOf(lease: KeyLease): KeyGrant {
  if (lease.unlimited) throw new Error('expected a grant, got unlimited');
  return lease;
}

describe('key limiter', () => {
  let ctx: TestContext;

  beforeAll(async () => {
    ctx = await startTestContext();
  });
  afterAll(async () => {
    await ctx?.close();
  });

  test('three batches on one key at 240 RPM: together within the limit in every window, shares within 20%', async () => {
    const apiKey = newKey();
    const windowMs = 8_000;
    const counted = windowMs + 1_000;
    const options: KeyLeaseOptions = {
      apiKey,
      limits: { rpm: 240 },
      client: ctx.temporal,
      taskQueue: ctx.taskQueue,
      // Short waits: callers also go through zero grants and come back after retryAfterMs.
      limiter: { windowMs, maxWaitMs: 3_000 },
    };
    // Each asks for its own amount at a time, as batches of different concurrency would.
    const batches = [
      { id: 'batch-small', size: 2 },
      { id: 'batch-medium', size: 8 },
      { id: 'batch-large', size: 40 },
    ];
    const grants: (KeyGrant & { batchId: string })[] = [];
    let stopAt = Number.POSITIVE_INFINITY;
    const run = async ({ id, size }: { id: string; size: number }) => {
      const lease = leaser(options, id);
      while (Date.now() < stopAt) {
        const grant = grantOf(
          await lease({ requests: size, inputTokens: size * 100, outputTokens: size * 50 }),
        );
        if (grant.requests > 0) grants.push({ ...grant, batchId: id });
        // A batch that got nothing waits as told (its turn is kept meanwhile); one that got
        // capacity asks again at once, as a batch with work left would.
        else await new Promise((resolve) => setTimeout(resolve, grant.retryAfterMs ?? 0));
      }
    };
    const running = batches.map(run);
    // Three windows' worth of grants, measured from the first grant.
    await waitFor(
      async () => grants.length,
      (n) => n > 0,
      { what: 'the first grant' },
    );
    stopAt = Date.now() + 3 * counted + 2_000;
    await Promise.all(running);

    const start = Math.min(...grants.map((g) => g.grantedAt));
    const measured = grants
      .filter((g) => g.grantedAt < start + 3 * counted)
      .sort((a, b) => a.grantedAt - b.grantedAt);
    // (a) In every window the key counts (window plus margin), at most 240 requests started.
    for (const grant of measured) {
      const inWindow = measured
        .filter((g) => g.grantedAt > grant.grantedAt - counted && g.grantedAt <= grant.grantedAt)
        .reduce((sum, g) => sum + g.requests, 0);
      expect(inWindow).toBeLessThanOrEqual(240);
    }
    // The limit was reached (the key was shared, not idle): three windows of 240.
    const total = measured.reduce((sum, g) => sum + g.requests, 0);
    expect(total).toBe(720);
    // (b) Shares within 20% of each other, though one asks for 2 at a time and one for 40. Counted
    // from the second window on: in the first, whoever reached the new limiter first had the key
    // to itself until the others arrived.
    const shares = batches.map(({ id }) =>
      measured
        .filter((g) => g.batchId === id && g.grantedAt >= start + counted)
        .reduce((sum, g) => sum + g.requests, 0),
    );
    expect(Math.max(...shares)).toBeLessThanOrEqual(1.2 * Math.min(...shares));
    if (process.env.KEY_LIMITER_REPORT) console.log(`shares ${shares.join(', ')} of ${total}`);

    // The key never reached the limiter's history, and its id is the key's hash, not the key.
    const workflowId = keyLimiterWorkflowId(apiKey);
    expect(workflowId).toBe(
      `maritaca-key-limiter-${createHash('sha256').update(apiKey).digest('hex').slice(0, 16)}`,
    );
    const history = await historyText(ctx.temporal, workflowId);
    expect(history).toContain('leaseKeyCapacity');
    expect(history).not.toContain(apiKey);
    expect(history).not.toContain(apiKey.slice('sk-limiter-'.length));
    expect(ctx.logs.join('\n')).not.toContain(apiKey);
    await ctx.temporal.workflow.getHandle(workflowId).terminate('test over');
  }, 60_000);

  test("a lease survives the worker's restart: the limiter's window outlives the worker", async () => {
    const apiKey = newKey();
    const taskQueue = `limiter-restart-${randomUUID()}`;
    const bundlePath = process.env.TEST_WORKFLOW_BUNDLE!;
    const startWorker = async () => {
      const connection = await NativeConnection.connect({ address: process.env.TEST_TEMPORAL_ADDRESS! });
      const worker = await Worker.create({
        connection,
        taskQueue,
        plugins: [
          new MaritacaBatchPlugin({
            apiKey: TEST_API_KEY,
            workflowBundle: { codePath: bundlePath },
            checkSearchAttributes: false,
          }),
        ],
      });
      const running = worker.run();
      return {
        async stop() {
          worker.shutdown();
          await running;
          await connection.close();
        },
      };
    };
    const windowMs = 20_000;
    const options: KeyLeaseOptions = {
      apiKey,
      limits: { rpm: 5 },
      client: ctx.temporal,
      taskQueue,
      limiter: { windowMs, maxWaitMs: 50_000 },
    };
    const first = await startWorker();
    const filled = grantOf(
      await leaser(options, 'batch-a')({ requests: 5, inputTokens: 0, outputTokens: 0 }),
    );
    expect(filled.requests).toBe(5);
    const handle = ctx.temporal.workflow.getHandle(keyLimiterWorkflowId(apiKey));
    const runBefore = (await handle.describe()).runId;
    await first.stop();

    // Asked while no worker runs; answered by the next worker, from the same window.
    const asked = Date.now();
    const pending = leaser(options, 'batch-b')({ requests: 1, inputTokens: 0, outputTokens: 0 });
    const second = await startWorker();
    try {
      const grant = grantOf(await pending);
      expect(grant.requests).toBe(1);
      // Not before the five granted before the restart left the window (a limiter started afresh
      // would have granted at once).
      expect(grant.grantedAt).toBeGreaterThanOrEqual(filled.grantedAt + windowMs + 1_000);
      expect(Date.now() - asked).toBeGreaterThan(1_000);
      const after = await handle.describe();
      expect(after.runId).toBe(runBefore);
      expect(after.status.name).toBe('RUNNING');
    } finally {
      await handle.terminate('test over');
      await second.stop();
    }
  }, 60_000);

  test('continues as new past its history bound, carrying the window and the totals', async () => {
    const apiKey = newKey();
    const options: KeyLeaseOptions = {
      apiKey,
      limits: { rpm: 40 },
      client: ctx.temporal,
      taskQueue: ctx.taskQueue,
      limiter: { historyEventLimit: 100, maxWaitMs: 1_000 },
    };
    const lease = leaser(options, 'batch-a');
    const handle = ctx.temporal.workflow.getHandle(keyLimiterWorkflowId(apiKey));
    expect(grantOf(await lease({ requests: 1, inputTokens: 10, outputTokens: 10 })).requests).toBe(1);
    const firstRun = (await handle.describe()).runId;
    for (let i = 1; i < 40; i++) {
      expect(grantOf(await lease({ requests: 1, inputTokens: 10, outputTokens: 10 })).requests).toBe(1);
    }
    expect((await handle.describe()).runId).not.toBe(firstRun);
    const status = await handle.query(keyLimiterStatusQuery);
    expect(status.granted.requests).toBe(40);
    expect(status.usage.requests).toBe(40);
    // The window crossed into the new run: the key is full for the minute.
    const refused = grantOf(
      await leaser(options, 'batch-b')({ requests: 1, inputTokens: 0, outputTokens: 0 }),
    );
    expect(refused.requests).toBe(0);
    expect(refused.retryAfterMs).toBeGreaterThan(30_000);
    await handle.terminate('test over');
  }, 60_000);

  test('ends by itself once idle, and refuses a malformed demand without retrying', async () => {
    const apiKey = newKey();
    // The client a worker hands its activities runs over a NativeConnection: use one here.
    const native = await NativeConnection.connect({ address: process.env.TEST_TEMPORAL_ADDRESS! });
    const options: KeyLeaseOptions = {
      apiKey,
      limits: { rpm: 100 },
      client: new Client({ connection: native }),
      taskQueue: ctx.taskQueue,
      limiter: { windowMs: 500, marginMs: 100, idleMs: 1_500 },
    };
    const lease = leaser(options, 'batch-a');
    await expect(lease({ requests: 0, inputTokens: 0, outputTokens: 0 })).rejects.toMatchObject({
      type: 'MaritacaBatchInvalidInput',
      nonRetryable: true,
      message: expect.stringContaining('requests: must be at least 1'),
    });
    expect(grantOf(await lease({ requests: 3, inputTokens: 0, outputTokens: 0 })).requests).toBe(3);
    const result: KeyLimiterResult = await ctx.temporal.workflow
      .getHandle(keyLimiterWorkflowId(apiKey))
      .result();
    expect(result).toEqual({
      endedBy: 'idle',
      granted: { requests: 3, inputTokens: 0, outputTokens: 0, leases: 1 },
    });
    await native.close();
  }, 30_000);

  test('without limits the activity answers unlimited at once, touching no workflow', async () => {
    const activities = createActivities({ apiKey: TEST_API_KEY, baseURL: 'http://127.0.0.1:9' });
    await expect(
      activities.leaseKeyCapacity({ batchId: 'b', requests: 5, inputTokens: 1, outputTokens: 1 }),
    ).resolves.toEqual({ unlimited: true });
  });
});
