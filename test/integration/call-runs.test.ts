import type { BatchHandle, RequestOutcome } from '../../src';
import { questions, startTestContext, type TestContext } from '../helpers/context';
import { waitFor } from '../helpers/wait';

/** Activities the batch scheduled to call Maritaca, by type. */
async function callActivities(handle: BatchHandle): Promise<{ single: number; runs: number }> {
  const { events } = await handle.workflowHandle.fetchHistory();
  const types = (events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name);
  return {
    single: types.filter((t) => t === 'callMaritaca').length,
    runs: types.filter((t) => t === 'callMaritacaRun').length,
  };
}

/** Each id once, in input order: no request lost or reported twice. */
function expectEveryIdOnce(results: RequestOutcome[], count: number): void {
  expect(results.map((r) => r.id)).toEqual(questions(count).map((q) => q.id));
}

describe('runs of calls (several requests per activity, one outcome each)', () => {
  let ctx: TestContext;

  beforeAll(async () => {
    ctx = await startTestContext({ latencyMs: 20 });
  });
  afterAll(async () => {
    await ctx?.close();
  });
  beforeEach(() => {
    ctx.fake.reset();
    ctx.fake.configure({ latencyMs: 20, errorRate429: null, seed: null });
  });

  test('once latency is known, activities carry several calls; every request is called once and the window holds', async () => {
    const handle = await ctx.batches.start(questions(80), { maxConcurrency: 4, autoApproveBelow: 100 });
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expectEveryIdOnce(result.results, 80);
    expect(result.results.every((r) => r.ok && r.attempts === 1)).toBe(true);
    const stats = ctx.fake.stats();
    expect(stats.totalRequests).toBe(80);
    expect(stats.peakConcurrency).toBeLessThanOrEqual(4);
    const scheduled = await callActivities(handle);
    // The first window goes one call per activity (no latency known yet), then runs take over.
    expect(scheduled.runs).toBeGreaterThan(0);
    expect(scheduled.single + scheduled.runs).toBeLessThan(80 / 3);
  });

  test("a request's own failure fails only that request; the run goes on with the next ones", async () => {
    const requests = questions(10);
    requests[3]!.messages[0]!.content += ' [[fake-status:400]]';
    const handle = await ctx.batches.start(requests, {
      maxConcurrency: 1,
      autoApproveBelow: 100,
      callsPerActivity: 5,
      returnExceptions: true,
    });
    const result = await handle.result();
    expectEveryIdOnce(result.results, 10);
    expect(result.results.filter((r) => !r.ok).map((r) => r.id)).toEqual([requests[3]!.id]);
    expect(ctx.fake.stats().totalRequests).toBe(10);
    expect(await callActivities(handle)).toEqual({ single: 0, runs: 2 });
  });

  test('a run starts no call after 4 s: slow answers give the rest back to the queue, unspent', async () => {
    ctx.fake.configure({ latencyMs: 300 });
    const handle = await ctx.batches.start(questions(30), {
      maxConcurrency: 1,
      autoApproveBelow: 100,
      callsPerActivity: 30,
    });
    const result = await handle.result();
    expectEveryIdOnce(result.results, 30);
    expect(result.results.every((r) => r.ok && r.attempts === 1)).toBe(true);
    expect(ctx.fake.stats().totalRequests).toBe(30);
    // 30 calls of 300 ms do not fit one 4-second run (the even share allows all 30 in the first).
    expect((await callActivities(handle)).runs).toBeGreaterThanOrEqual(3);
  });

  test('a 429 stops its run: the calls it did not make go back to the queue without spending an attempt', async () => {
    ctx.fake.configure({ errorRate429: 0.25, retryAfterSeconds: 1, seed: 17 });
    const handle = await ctx.batches.start(questions(24), {
      maxConcurrency: 2,
      autoApproveBelow: 100,
      callsPerActivity: 6,
      retry: { maximumAttempts: 20 },
    });
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expectEveryIdOnce(result.results, 24);
    expect(result.results.every((r) => r.ok)).toBe(true);
    const stats = ctx.fake.stats();
    expect(stats.byStatus['429']).toBeGreaterThan(0);
    // Attempts are exactly the calls made: a call a run never made is not an attempt.
    expect(result.results.reduce((n, r) => n + r.attempts, 0)).toBe(stats.totalRequests);
    expect((await handle.progress()).rateLimitedResponses).toBe(stats.byStatus['429']);
    expect(stats.peakConcurrency).toBeLessThanOrEqual(2);
  });

  test('a cancel reaches a run at its next heartbeat: answered calls are kept, the rest are not made', async () => {
    ctx.fake.configure({ latencyMs: 150 });
    const handle = await ctx.batches.start(questions(40), {
      maxConcurrency: 1,
      autoApproveBelow: 100,
      callsPerActivity: 40,
      heartbeatInterval: '1s',
    });
    await waitFor(
      async () => ctx.fake.stats().byStatus['200'] ?? 0,
      (answered) => answered >= 3,
      { what: 'the run to answer a few calls' },
    );
    await handle.cancel();
    const result = await handle.result();
    expect(result.status).toBe('cancelled');
    const stats = ctx.fake.stats();
    expect(stats.totalRequests).toBeLessThan(40);
    // Every answer Maritaca sent is in the results; the aborted call is counted at its worst case.
    expect(result.results.filter((r) => r.ok)).toHaveLength(stats.byStatus['200'] ?? 0);
    expect(result.unconfirmedCost).toBeGreaterThan(0);
  });
});
