import { WorkflowUpdateFailedError } from '@temporalio/client';
import { BatchUpdateRefusedError, approveBudgetUpdate, type BatchProgress } from '../../src';
import { questions, startTestContext, type TestContext } from '../helpers/context';
import { waitFor } from '../helpers/wait';

describe('budget and flow control', () => {
  let ctx: TestContext;

  beforeAll(async () => {
    ctx = await startTestContext({ latencyMs: 20 });
  });
  afterAll(async () => {
    await ctx?.close();
  });
  beforeEach(() => {
    ctx.fake.reset();
    ctx.fake.configure({
      latencyMs: 20,
      replyTokens: null,
      errorRate429: null,
      errorRate500: null,
      retryAfterSeconds: null,
    });
  });

  const progressOf = (handle: { progress(): Promise<BatchProgress> }) => () => handle.progress();

  test('approveBudget answers with the record and keeps every approval as an audit trail', async () => {
    const handle = await ctx.batches.start(questions(2));
    await waitFor(progressOf(handle), (p) => p.status === 'awaiting_approval');
    const record = await handle.approveBudget(3.5, 'ana');
    expect(record).toMatchObject({ budget: 3.5, approvedBy: 'ana', via: 'update' });
    await handle.result();
    const final = await handle.progress();
    expect(final.approvals).toEqual([record]);
  });

  test('the validator refuses, with a reason, approvals the batch is not waiting for or cannot use', async () => {
    const handle = await ctx.batches.start(questions(2));
    await waitFor(progressOf(handle), (p) => p.status === 'awaiting_approval');
    // Past the client's own checks, straight to the workflow's validator.
    const refusal = await handle.workflowHandle
      .executeUpdate(approveBudgetUpdate, { args: [{ budget: -1 }] })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(refusal).toBeInstanceOf(WorkflowUpdateFailedError);
    expect((refusal as WorkflowUpdateFailedError).cause?.message).toMatch(
      /budget: must be a positive number/,
    );
    expect((await handle.progress()).approvals).toEqual([]);

    await handle.approveBudget(5);
    await handle.result();
    const late = await handle.approveBudget(10).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(late).toBeInstanceOf(BatchUpdateRefusedError);
    expect((late as BatchUpdateRefusedError).reason).toBe('the batch has ended (status: completed)');
  });

  test('a budget of 40% of the worst case stops in awaiting_budget within budget, and a larger approval finishes it', async () => {
    ctx.fake.configure({ replyTokens: 'max' });
    const requests = questions(10).map((r) => ({ ...r, maxTokens: 400 }));
    const handle = await ctx.batches.start(requests, { maxConcurrency: 3 });
    const waiting = await waitFor(progressOf(handle), (p) => p.status === 'awaiting_approval');
    const worstCase = waiting.estimate!.maxCost;
    const budget = worstCase * 0.4;
    await handle.approveBudget(budget, 'finance');

    const stuck = await waitFor(progressOf(handle), (p) => p.status === 'awaiting_budget', {
      what: 'awaiting_budget',
    });
    expect(stuck.waitingFor).toBe('budget');
    expect(stuck.inFlight).toBe(0);
    expect(stuck.completed).toBeGreaterThan(0);
    expect(stuck.completed).toBeLessThan(10);
    expect(stuck.actualCost).toBeLessThanOrEqual(budget);
    expect(stuck.budget).toMatchObject({ approved: budget, spent: stuck.actualCost, reserved: 0 });
    expect(stuck.budget!.restMaxCost).toBeGreaterThan(stuck.budget!.remaining);
    expect(stuck.budget!.restEstimate).toBeGreaterThan(0);
    expect(ctx.fake.stats().totalRequests).toBe(stuck.completed);

    const tooLittle = await handle.approveBudget(stuck.actualCost / 2).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((tooLittle as BatchUpdateRefusedError).reason).toMatch(/below what was already spent/);
    const notMore = await handle.approveBudget(budget).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((notMore as BatchUpdateRefusedError).reason).toMatch(/not above the current budget/);

    await handle.approveBudget(worstCase, 'finance');
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(result.results.every((r) => r.ok)).toBe(true);
    expect(result.actualCost).toBeLessThanOrEqual(worstCase);
    expect(result.approvals.map((a) => a.budget)).toEqual([budget, worstCase]);
    // Every answer used its whole max_tokens, the worst case for output.
    for (const r of result.results)
      if (r.ok) expect(r.result.llmOutput.tokenUsage.completionTokens).toBe(400);
  });

  test('reject while waiting for budget ends the batch as budget_exhausted with the partial results', async () => {
    ctx.fake.configure({ replyTokens: 'max' });
    const handle = await ctx.batches.start(questions(6), { maxConcurrency: 2 });
    const waiting = await waitFor(progressOf(handle), (p) => p.status === 'awaiting_approval');
    await handle.approveBudget(waiting.estimate!.maxCost * 0.3);
    const stuck = await waitFor(progressOf(handle), (p) => p.status === 'awaiting_budget');
    await handle.reject('enough for today');
    const result = await handle.result();
    expect(result.status).toBe('budget_exhausted');
    expect(result.results).toHaveLength(stuck.completed);
    expect(result.actualCost).toBeLessThanOrEqual(waiting.estimate!.maxCost * 0.3);
  });

  test('pause stops new calls while those in flight finish; resume goes on', async () => {
    ctx.fake.configure({ latencyMs: 300 });
    const handle = await ctx.batches.start(questions(8), { maxConcurrency: 2, autoApproveBelow: 100 });
    await waitFor(
      async () => ctx.fake.stats(),
      (s) => s.totalRequests >= 2,
      { what: 'calls to start' },
    );
    await handle.pause();
    const paused = await waitFor(progressOf(handle), (p) => p.status === 'paused' && p.inFlight === 0, {
      what: 'paused with nothing in flight',
    });
    expect(paused.paused).toBe(true);
    expect(paused.waitingFor).toBe('pause');
    expect(paused.completed).toBeLessThan(8);
    const sent = ctx.fake.stats().totalRequests;
    expect(sent).toBe(paused.completed);
    // Observe a while: a paused batch sends nothing.
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(ctx.fake.stats().totalRequests).toBe(sent);
    expect((await handle.progress()).completed).toBe(paused.completed);

    await handle.resume();
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(result.results).toHaveLength(8);
  });

  test('setConcurrency changes the concurrency Maritaca sees, at once', async () => {
    ctx.fake.configure({ latencyMs: 400 });
    const handle = await ctx.batches.start(questions(40), { maxConcurrency: 2, autoApproveBelow: 100 });
    await waitFor(
      async () => ctx.fake.stats(),
      (s) => s.currentConcurrency === 2,
      { what: '2 in flight' },
    );
    expect(await handle.setConcurrency(6)).toBe(6);
    await waitFor(
      async () => ctx.fake.stats(),
      (s) => s.currentConcurrency === 6,
      { what: '6 in flight' },
    );
    expect((await handle.progress()).concurrency).toEqual({ max: 6, current: 6 });

    await handle.setConcurrency(1);
    await waitFor(
      async () => ctx.fake.stats(),
      (s) => s.currentConcurrency <= 1,
      { what: 'down to 1' },
    );
    ctx.fake.reset();
    await handle.setConcurrency(40);
    await handle.result();
    expect(ctx.fake.stats().peakConcurrency).toBeGreaterThan(6);
  });

  test('a 429 holds the whole window for Retry-After and halves the concurrency', async () => {
    ctx.fake.configure({ latencyMs: 50, errorRate429: 1, retryAfterSeconds: 2 });
    const handle = await ctx.batches.start(questions(8), { maxConcurrency: 4, autoApproveBelow: 100 });
    const holding = await waitFor(progressOf(handle), (p) => p.waitingFor === 'retry_after', {
      what: 'the Retry-After hold',
    });
    ctx.fake.configure({ errorRate429: null });
    expect(holding.concurrency.current).toBeLessThan(4);
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(result.results.every((r) => r.ok)).toBe(true);
    const stats = ctx.fake.stats();
    // Only the calls already in flight when the first 429 came back were refused: the hold kept
    // every other call back instead of letting each retry on its own.
    expect(stats.byStatus['429']).toBe(4);
    expect((await handle.progress()).rateLimitedResponses).toBe(4);
    expect(result.results.reduce((n, r) => n + r.attempts, 0)).toBe(8 + 4);
  });

  test('retryFailed re-sends only the failed requests, and the merged view has every latest outcome', async () => {
    ctx.fake.configure({ errorRate500: 0.5, seed: 3 });
    const requests = questions(12);
    const first = await ctx.batches.start(requests, {
      autoApproveBelow: 100,
      returnExceptions: true,
      retry: { maximumAttempts: 1 },
    });
    const firstResult = await first.result();
    const failedIds = firstResult.results.filter((r) => !r.ok).map((r) => r.id);
    expect(failedIds.length).toBeGreaterThan(0);
    expect(failedIds.length).toBeLessThan(12);
    ctx.fake.configure({ errorRate500: null });

    const followUp = await ctx.batches.retryFailed(first.batchId, { autoApproveBelow: 100 });
    expect(followUp.batchId).toBe(`${first.batchId}-retry-1`);
    const second = await followUp.result();
    expect(second.results.map((r) => r.id)).toEqual(failedIds);
    const stats = ctx.fake.stats();
    for (const r of firstResult.results) {
      expect(stats.byRequestId[`${followUp.batchId}/${r.id}`]).toBe(r.ok ? undefined : 1);
    }

    const merged = await ctx.batches.mergedResults(followUp.batchId);
    expect(merged.batchIds).toEqual([first.batchId, followUp.batchId]);
    expect(merged.results.map((r) => r.id)).toEqual(requests.map((r) => r.id));
    expect(merged.results.every((r) => r.ok)).toBe(true);
    expect(merged.results.map((r) => r.index)).toEqual(requests.map((_, i) => i));
  });
});
