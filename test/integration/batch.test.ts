import { BatchRequestFailedError, FailureTypes, type BatchProgress, type RequestOutcome } from '../../src';
import { startFakeMaritaca, type FakeMaritacaBehaviour } from '../../src/testing/fake-maritaca';
import { questions, startTestContext, TEST_API_KEY, type TestContext } from '../helpers/context';
import { historyText } from '../helpers/history';
import { waitFor } from '../helpers/wait';

const fastRetry = { initialInterval: 50, maximumInterval: 500, backoffCoefficient: 2 };

/**
 * How many chat calls a fake with this (seeded) behaviour answers before `successes` of them
 * succeed. The fake draws its decisions from the seed in arrival order, so any client that retries
 * every failure until `successes` requests succeed makes exactly this many calls, whatever order
 * they arrive in.
 */
async function callsUntil(successes: number, behaviour: FakeMaritacaBehaviour): Promise<number> {
  const fake = await startFakeMaritaca({ ...behaviour, apiKey: 'oracle' });
  try {
    let calls = 0;
    for (let succeeded = 0; succeeded < successes; calls++) {
      const response = await fetch(`${fake.url}/chat/completions`, {
        method: 'POST',
        headers: { authorization: 'Bearer oracle', 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'sabia-4', messages: [{ role: 'user', content: 'Oi' }] }),
      });
      await response.text();
      if (response.status === 200) succeeded++;
    }
    return calls;
  } finally {
    await fake.close();
  }
}

function answerOf(outcome: RequestOutcome): string {
  if (!outcome.ok) throw new Error(`request ${outcome.id} failed: ${outcome.error.message}`);
  return outcome.result.generations[0]!.text;
}

describe('maritacaBatch on a real dev server and fake Maritaca', () => {
  let ctx: TestContext;

  beforeAll(async () => {
    ctx = await startTestContext({ latencyMs: 100 });
  });
  afterAll(async () => {
    await ctx?.close();
  });
  beforeEach(async () => {
    await ctx.fake.reset();
    ctx.fake.configure({ latencyMs: 100, errorRate500: 0, errorRate429: 0 });
  });

  test('runs 20 requests through a window of 3, in input order, each answer matching its request', async () => {
    const requests = questions(20);
    const handle = await ctx.batches.start(requests, { maxConcurrency: 3, autoApproveBelow: 100 });
    const result = await handle.result();

    expect(result.status).toBe('completed');
    expect(result.results.map((r) => r.id)).toEqual(requests.map((r) => r.id));
    result.results.forEach((outcome, index) => {
      expect(outcome.index).toBe(index);
      expect(answerOf(outcome)).toContain(requests[index]!.messages[0]!.content);
      expect(outcome.attempts).toBe(1);
    });
    const stats = await ctx.fake.stats();
    expect(stats.peakConcurrency).toBeLessThanOrEqual(3);
    expect(stats.peakConcurrency).toBeGreaterThanOrEqual(2);
    expect(stats.totalRequests).toBe(20);
    for (const r of requests) expect(stats.byRequestId[`${handle.batchId}/${r.id}`]).toBe(1);
  });

  test('waits for approval with the estimate visible and nothing sent, then runs on approve', async () => {
    const handle = await ctx.batches.start(questions(4), { maxConcurrency: 2 });
    const waiting = await waitFor(
      () => handle.progress(),
      (p) => p.status === 'awaiting_approval',
      { what: 'awaiting_approval' },
    );
    expect(waiting.estimate).not.toBeNull();
    expect(waiting.estimate!.totalRequests).toBe(4);
    expect(waiting.estimate!.totalOutputTokens).toBe(4 * 1000);
    expect(waiting.estimate!.totalCost).toBeGreaterThan(0);
    expect(await handle.estimate()).toEqual(waiting.estimate);
    expect((await ctx.fake.stats()).totalRequests).toBe(0);

    await handle.approve({ approvedBy: 'ana@example.com' });
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(result.approvedBudget).toBe(waiting.estimate!.totalCost);
    const final = await handle.progress();
    expect(final.approval).toMatchObject({ approvedBy: 'ana@example.com', via: 'signal' });
    expect((await ctx.fake.stats()).totalRequests).toBe(4);
  });

  test('reject ends the batch as rejected without calling Maritaca', async () => {
    const handle = await ctx.batches.start(questions(3));
    await waitFor(
      () => handle.progress(),
      (p) => p.status === 'awaiting_approval',
    );
    await handle.reject('too expensive');
    const result = await handle.result();
    expect(result.status).toBe('rejected');
    expect(result.rejectionReason).toBe('too expensive');
    expect(result.results).toEqual([]);
    expect((await ctx.fake.stats()).totalRequests).toBe(0);
  });

  test('approvalTimeout ends an unapproved batch as expired', async () => {
    const handle = await ctx.batches.start(questions(2), { approvalTimeout: '1s' });
    const result = await handle.result();
    expect(result.status).toBe('expired');
    expect((await handle.progress()).status).toBe('expired');
    expect((await ctx.fake.stats()).totalRequests).toBe(0);
  });

  test('autoApproveBelow skips the wait when the estimate is below it', async () => {
    const handle = await ctx.batches.start(questions(2), { autoApproveBelow: 50 });
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(result.approvedBudget).toBe(50);
    expect((await handle.progress()).approval).toMatchObject({ via: 'auto', budget: 50 });
  });

  test('autoApproveBelow just under the estimate waits for a person and sends nothing', async () => {
    const requests = questions(2);
    const { totalCost } = await ctx.batches.abatchEstimateCost(requests.map((r) => r.messages));
    const handle = await ctx.batches.start(requests, { autoApproveBelow: totalCost - 1e-6 });
    const decided = await waitFor(
      () => handle.progress(),
      (p) => p.status !== 'estimating',
      { what: 'the approval decision' },
    );
    expect(decided.estimate!.totalCost).toBe(totalCost);
    expect(decided.status).toBe('awaiting_approval');
    expect(decided.approvals).toEqual([]);
    expect((await ctx.fake.stats()).totalRequests).toBe(0);
    await handle.reject('below the threshold');
    expect((await handle.result()).status).toBe('rejected');
    expect((await ctx.fake.stats()).totalRequests).toBe(0);
  });

  test('autoApproveBelow just over the estimate approves it without waiting', async () => {
    const requests = questions(2);
    const { totalCost } = await ctx.batches.abatchEstimateCost(requests.map((r) => r.messages));
    const threshold = totalCost + 1e-6;
    const handle = await ctx.batches.start(requests, { autoApproveBelow: threshold });
    const decided = await waitFor(
      () => handle.progress(),
      (p) => p.status !== 'estimating',
      { what: 'the approval decision' },
    );
    expect(decided.estimate!.totalCost).toBe(totalCost);
    expect(decided.status).not.toBe('awaiting_approval');
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(result.approvedBudget).toBe(threshold);
    expect((await handle.progress()).approvals).toEqual([
      expect.objectContaining({ via: 'auto', budget: threshold }),
    ]);
    expect((await ctx.fake.stats()).totalRequests).toBe(2);
  });

  test('a budget approval with a budget keeps it', async () => {
    const handle = await ctx.batches.start(questions(2));
    await waitFor(
      () => handle.progress(),
      (p) => p.status === 'awaiting_approval',
    );
    await handle.approve({ budget: 12.5 });
    expect((await handle.result()).approvedBudget).toBe(12.5);
  });

  test('retries 500s and 429s with Retry-After until every request succeeds', async () => {
    const faults = { latencyMs: 5, errorRate500: 0.3, errorRate429: 0.1, retryAfterSeconds: 1, seed: 110 };
    ctx.fake.configure(faults);
    const requests = questions(20);
    const handle = await ctx.batches.start(requests, {
      maxConcurrency: 5,
      autoApproveBelow: 100,
      retry: { ...fastRetry, maximumAttempts: 30 },
    });
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(result.results.every((r) => r.ok)).toBe(true);
    const attempts = result.results.reduce((sum, r) => sum + r.attempts, 0);
    const stats = await ctx.fake.stats();
    expect(stats.totalRequests).toBe(attempts);
    expect(attempts).toBeGreaterThan(20);
    // Seeded: the same faults every run, so exactly as many calls as the fault sequence needs.
    expect(attempts).toBe(await callsUntil(20, faults));
    expect(stats.byStatus['200']).toBe(20);
    for (const r of result.results) expect(stats.byRequestId[`${handle.batchId}/${r.id}`]).toBe(r.attempts);
  });

  test('progress never goes backwards, ends at total, and actualCost is the sum of call costs', async () => {
    ctx.fake.configure({ latencyMs: 30 });
    const handle = await ctx.batches.start(questions(15), { maxConcurrency: 3, autoApproveBelow: 100 });
    const seen: BatchProgress[] = [];
    const done = handle.result();
    let finished = false;
    void done.finally(() => (finished = true));
    while (!finished) seen.push(await handle.progress());
    const result = await done;
    const final = await handle.progress();
    seen.push(final);

    for (let i = 1; i < seen.length; i++)
      expect(seen[i]!.completed).toBeGreaterThanOrEqual(seen[i - 1]!.completed);
    for (const p of seen) {
      expect(p.completed + p.inFlight + p.pending).toBe(p.total);
      // Runs of calls may hand a slot several requests; the slots never exceed the window.
      expect(p.concurrency.inUse).toBeLessThanOrEqual(3);
    }
    expect(ctx.fake.stats().peakConcurrency).toBeLessThanOrEqual(3);
    expect(final.completed).toBe(15);
    expect(final.succeeded).toBe(15);
    expect(final.status).toBe('completed');
    const sum = result.results.reduce((acc, r) => acc + (r.ok ? r.cost : 0), 0);
    expect(final.actualCost).toBeCloseTo(sum, 9);
    expect(result.actualCost).toBeGreaterThan(0);
    const usageTokens = result.results.reduce(
      (acc, r) => acc + (r.ok ? r.result.llmOutput.tokenUsage.totalTokens : 0),
      0,
    );
    expect(usageTokens).toBeGreaterThan(0);
  });

  test('cancel aborts the calls in flight and returns the results so far', async () => {
    ctx.fake.configure({ latencyMs: 60_000 });
    // A short heartbeat interval: the cancel reaches the calls at their next heartbeat.
    const handle = await ctx.batches.start(questions(6), {
      maxConcurrency: 2,
      autoApproveBelow: 100,
      heartbeatInterval: '1s',
    });
    await waitFor(
      async () => ctx.fake.stats(),
      (s) => s.currentConcurrency === 2,
      { what: '2 calls in flight' },
    );
    await handle.cancel();
    const result = await handle.result();
    expect(result.status).toBe('cancelled');
    expect(result.results).toEqual([]);
    // Aborted, never answered; Maritaca may still bill them, so the batch counts their worst case.
    const stats = await ctx.fake.stats();
    expect(stats.byStatus['200'] ?? 0).toBe(0);
    expect(result.actualCost).toBe(0);
    expect(result.unconfirmedCost).toBeGreaterThan(0);
    expect((await handle.progress()).status).toBe('cancelled');
  });

  test('the API key never reaches workflow history', async () => {
    const handle = await ctx.batches.start(questions(3), { autoApproveBelow: 100 });
    await handle.result();
    const text = await historyText(ctx.temporal, handle.batchId);
    expect(text).toContain('Pergunta número 0');
    expect(text).not.toContain(TEST_API_KEY);
  });
});

describe('a key Maritaca refuses (401)', () => {
  let ctx: TestContext;

  beforeAll(async () => {
    ctx = await startTestContext({ apiKey: 'the-server-expects-another-key' });
  });
  afterAll(async () => {
    await ctx?.close();
  });

  test('pauses the batch in awaiting_credentials with the server message: no request fails, nothing more is sent', async () => {
    const handle = await ctx.batches.start(questions(6), {
      autoApproveBelow: 100,
      maxConcurrency: 2,
      retry: fastRetry,
    });
    const paused = await waitFor(
      () => handle.progress(),
      (p) => p.status === 'awaiting_credentials' && p.inFlight === 0,
      { what: 'the credentials pause' },
    );
    expect(paused.waitingFor).toBe('credentials');
    expect(paused.credentialsError).toMatchObject({ status: 401 });
    expect(paused.credentialsError!.message).toMatch(/invalid api key/i);
    expect(paused.failed).toBe(0);
    // At most the calls in flight when the key was refused.
    expect(ctx.fake.stats().totalRequests).toBeLessThanOrEqual(2);
    await handle.cancel();
    expect((await handle.result()).status).toBe('cancelled');
    const text = await historyText(ctx.temporal, handle.batchId);
    expect(text).toContain('MaritacaAuthenticationError');
    expect(text).not.toContain(TEST_API_KEY);
  });

  test('a request Maritaca refuses (400) fails the batch naming it, without returnExceptions', async () => {
    const refused = questions(5);
    for (const q of refused) q.messages[0]!.content += ' [[fake-status:400]]';
    // A context whose key the fake accepts: only the requests themselves are refused.
    const own = await startTestContext();
    try {
      const handle = await own.batches.start(refused, { autoApproveBelow: 100, maxConcurrency: 1 });
      const failure = await handle.result().then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(failure).toBeInstanceOf(BatchRequestFailedError);
      const error = failure as BatchRequestFailedError;
      expect(error.requestId).toBe('q0');
      expect(error.index).toBe(0);
      expect(error.status).toBe(400);
      expect(error.type).toBe(FailureTypes.BadRequest);
      expect(error.message).toContain('"q0"');
      expect(error.message).not.toContain(TEST_API_KEY);
      expect((await handle.progress()).status).toBe('failed');
    } finally {
      await own.close();
    }
  });
});
