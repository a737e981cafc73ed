import { WorkflowUpdateFailedError } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import {
  BatchUpdateRefusedError,
  FailureTypes,
  approveBudgetUpdate,
  type BatchHandle,
  type BatchProgress,
} from '../../src';
import { fakePromptTokens } from '../../src/testing/fake-maritaca';
import { questions, startTestContext, type TestContext } from '../helpers/context';
import { waitFor } from '../helpers/wait';

/** sabia-4 (the default model) in BRL per token, from Maritaca's price list, not from the code under test. */
const SABIA_4 = { input: 5 / 1e6, output: 20 / 1e6 };

/** The batch's event history, each event with its server time in ms. */
async function historyOf(handle: BatchHandle) {
  const { events } = await handle.workflowHandle.fetchHistory();
  return (events ?? []).map((event) => ({ event, at: tsToMs(event.eventTime) }));
}

/** Maritaca calls the workflow has scheduled so far, retries included. */
async function callsScheduled(handle: BatchHandle): Promise<number> {
  return (await historyOf(handle)).filter(
    ({ event }) => event.activityTaskScheduledEventAttributes?.activityType?.name === 'callMaritaca',
  ).length;
}

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
    // What was spent, priced here from what the fake answered: every question counts the same
    // number of tokens and every answer is 400 tokens long, so each call costs the same.
    expect(new Set(requests.map((r) => fakePromptTokens(r.messages, 'sabia-4'))).size).toBe(1);
    const perCall = fakePromptTokens(requests[0]!.messages, 'sabia-4') * SABIA_4.input + 400 * SABIA_4.output;
    expect(stuck.actualCost).toBeCloseTo(stuck.completed * perCall, 9);
    expect(stuck.budget).toMatchObject({ approved: budget, reserved: 0 });
    expect(stuck.budget!.spent).toBeCloseTo(stuck.completed * perCall, 9);
    // It stopped only because the next call's worst case no longer fits, not before.
    expect(stuck.actualCost + worstCase / requests.length).toBeGreaterThan(budget);
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
    expect(result.actualCost).toBeCloseTo(requests.length * perCall, 9);
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
    const paused = await waitFor(
      progressOf(handle),
      (p) => (p.status === 'paused' && p.inFlight === 0) || p.status === 'completed',
      { what: 'paused with nothing in flight' },
    );
    expect(paused.status).toBe('paused');
    expect(paused.paused).toBe(true);
    expect(paused.waitingFor).toBe('pause');
    expect(paused.completed).toBeLessThan(8);
    const sent = ctx.fake.stats().totalRequests;
    expect(sent).toBe(paused.completed);
    const scheduled = await callsScheduled(handle);
    expect(scheduled).toBe(sent);

    // Wake the paused batch with room for more calls. The update returns once the workflow task
    // that ran it is recorded, so any call it let through would be in the history by then.
    expect(await handle.setConcurrency(4)).toBe(4);
    expect(await callsScheduled(handle)).toBe(scheduled);
    expect(await handle.progress()).toMatchObject({
      status: 'paused',
      inFlight: 0,
      completed: paused.completed,
      concurrency: { max: 4 },
    });
    expect(ctx.fake.stats().totalRequests).toBe(sent);

    await handle.resume();
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(result.results).toHaveLength(8);
    expect(ctx.fake.stats().totalRequests).toBe(8);
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
    expect((await handle.progress()).concurrency).toMatchObject({ max: 6, current: 6 });

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

  test('a 429 holds the whole window for Retry-After and narrows the concurrency', async () => {
    // Seeded, and left alone while the batch runs: how many calls are refused does not depend on
    // the order they arrive in, so nothing below does either.
    const retryAfterMs = 1000;
    ctx.fake.configure({
      latencyMs: 50,
      errorRate429: 0.5,
      retryAfterSeconds: retryAfterMs / 1000,
      seed: 429,
    });
    const handle = await ctx.batches.start(questions(8), {
      maxConcurrency: 4,
      autoApproveBelow: 100,
      retry: { maximumAttempts: 20 },
      // One activity per request, so each 429 is an activity failure the history shows.
      callsPerActivity: 1,
    });
    // Each hold keeps every start back for a whole second, against a 50 ms poll.
    const holding = await waitFor(
      progressOf(handle),
      (p) => p.waitingFor === 'retry_after' || p.status === 'completed',
      { what: 'the Retry-After hold' },
    );
    expect(holding.waitingFor).toBe('retry_after');
    expect(holding.concurrency.current).toBeLessThan(4);
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(result.results.every((r) => r.ok)).toBe(true);

    const stats = ctx.fake.stats();
    const refused = stats.byStatus['429'] ?? 0;
    expect(refused).toBeGreaterThan(0);
    expect(stats.byStatus['200']).toBe(8);
    expect(stats.totalRequests).toBe(8 + refused);
    expect(stats.peakConcurrency).toBeLessThanOrEqual(4);
    expect((await handle.progress()).rateLimitedResponses).toBe(refused);
    expect(result.results.reduce((n, r) => n + r.attempts, 0)).toBe(8 + refused);

    // The workflow learns of a 429 in the first workflow task that starts after it, whose start
    // is the workflow's clock (1 ms of slack for rounding below). The first 429 held every call:
    // nothing was scheduled until Retry-After had passed. A later one held the batch again only
    // if its call started after the last cut; either way, its own request was not sent again
    // before its Retry-After.
    const history = await historyOf(handle);
    const positionsOf = (match: (event: (typeof history)[number]['event']) => boolean) =>
      history.flatMap((entry, position) =>
        match(entry.event) ? [{ position, at: entry.at, event: entry.event }] : [],
      );
    const requestOf = (scheduled: (typeof history)[number]['event']): string => {
      const data = scheduled.activityTaskScheduledEventAttributes?.input?.payloads?.[0]?.data;
      return (JSON.parse(Buffer.from(data as Uint8Array).toString()) as { requestId: string }).requestId;
    };
    const scheduled = positionsOf(
      (event) => event.activityTaskScheduledEventAttributes?.activityType?.name === 'callMaritaca',
    );
    const scheduledById = new Map(history.map((entry) => [String(entry.event.eventId), entry.event]));
    const refusals = positionsOf(
      (event) =>
        event.activityTaskFailedEventAttributes?.failure?.applicationFailureInfo?.type ===
        FailureTypes.RateLimited,
    );
    const taskStarts = positionsOf((event) => event.workflowTaskStartedEventAttributes != null);
    expect(refusals).toHaveLength(refused);
    expect(scheduled).toHaveLength(8 + refused);
    refusals.forEach((refusal, n) => {
      const learnt = taskStarts.find((task) => task.position > refusal.position)!;
      const scheduledEventId = String(refusal.event.activityTaskFailedEventAttributes!.scheduledEventId);
      const requestId = requestOf(scheduledById.get(scheduledEventId)!);
      for (const call of scheduled.filter((c) => c.position > learnt.position)) {
        if (n === 0 || requestOf(call.event) === requestId) {
          expect(call.at - learnt.at).toBeGreaterThanOrEqual(retryAfterMs - 1);
        }
      }
    });
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
