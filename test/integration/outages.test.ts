import { questions, startTestContext, type TestContext } from '../helpers/context';
import { waitFor } from '../helpers/wait';

/** Each id once, in input order, every one answered. */
function expectAllAnswered(results: { id: string; ok: boolean }[], count: number): void {
  expect(results.map((r) => r.id)).toEqual(questions(count).map((q) => q.id));
  expect(results.filter((r) => !r.ok)).toEqual([]);
}

describe('outages and refused keys are batch-wide events', () => {
  let ctx: TestContext;

  beforeAll(async () => {
    ctx = await startTestContext({ latencyMs: 50 });
  });
  afterAll(async () => {
    await ctx?.close();
  });
  beforeEach(() => {
    ctx.fake.reset();
    ctx.fake.configure({ latencyMs: 50, outage: null, revokeKeyAfterCalls: null });
  });

  test(
    'a 3-minute outage holds the batch and probes it; no request runs out of its 3 attempts',
    async () => {
      const handle = await ctx.batches.start(questions(100), {
        maxConcurrency: 5,
        autoApproveBelow: 100,
        retry: { maximumAttempts: 3, initialInterval: '200ms' },
        apiProbeInterval: '5s',
        apiProbeMaxInterval: '30s',
      });
      await waitFor(
        async () => ctx.fake.stats().byStatus['200'] ?? 0,
        (answered) => answered >= 30,
        { what: '30 answers before the outage' },
      );
      ctx.fake.configure({ outage: 'unavailable', outageForMs: 180_000 });
      const held = await waitFor(
        () => handle.progress(),
        (p) => p.waitingFor === 'api_unavailable',
        { what: 'the batch to hold for the outage' },
      );
      expect(held.status).toBe('running');
      expect(held.apiOutage?.lastError).toMatch(/unavailable|503/i);
      await ctx.fake.outageEnded();
      const result = await handle.result();
      expect(result.status).toBe('completed');
      expectAllAnswered(result.results, 100);
      const stats = ctx.fake.stats();
      console.log(`outage: ${stats.outageCalls} calls sent during the 3-minute outage`);
      // The window's calls in flight when it began, then one probe at a time.
      expect(stats.outageCalls).toBeLessThanOrEqual(15);
      expect(stats.outageCalls).toBeGreaterThan(0);
    },
    6 * 60_000,
  );

  test('a key revoked mid-batch pauses it in awaiting_credentials; resume after the fix completes every request', async () => {
    ctx.fake.configure({ revokeKeyAfterCalls: 50 });
    const handle = await ctx.batches.start(questions(120), {
      maxConcurrency: 4,
      autoApproveBelow: 100,
      returnExceptions: true,
    });
    const paused = await waitFor(
      () => handle.progress(),
      (p) => p.status === 'awaiting_credentials',
      { what: 'the batch to wait for credentials' },
    );
    expect(paused.credentialsError).toMatchObject({ status: 401 });
    expect(paused.credentialsError!.message).toMatch(/revoked|invalid/i);
    expect(paused.failed).toBe(0);
    // Nothing more is sent while it waits: at most the calls already in flight were refused.
    await waitFor(
      () => handle.progress(),
      (p) => p.inFlight === 0,
      { what: 'the calls in flight to come back' },
    );
    const refused = ctx.fake.stats().revokedCalls;
    expect(refused).toBeGreaterThan(0);
    expect(refused).toBeLessThanOrEqual(4);
    expect((await handle.progress()).status).toBe('awaiting_credentials');

    ctx.fake.configure({ revokeKeyAfterCalls: null });
    await handle.resume();
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expectAllAnswered(result.results, 120);
    expect(ctx.fake.stats().revokedCalls).toBe(refused);
  });

  test('a burst of 429s cuts the window once per round trip, and it recovers within a few', async () => {
    ctx.fake.configure({ latencyMs: 100 });
    const handle = await ctx.batches.start(questions(300), {
      maxConcurrency: 20,
      autoApproveBelow: 100,
      callsPerActivity: 1,
      retry: { maximumAttempts: 20 },
    });
    await waitFor(
      async () => ctx.fake.stats().byStatus['200'] ?? 0,
      (answered) => answered >= 40,
      { what: '40 answers at the full window' },
    );
    // Every call in flight answers 429 (Retry-After 1 s: nothing new starts until it passes).
    ctx.fake.configure({ errorRate429: 1, retryAfterSeconds: 1 });
    await waitFor(
      () => handle.progress(),
      (p) => p.rateLimitedResponses > 0,
      { what: 'the first 429' },
    );
    ctx.fake.configure({ errorRate429: null });
    const lowest = { window: 20, refused: 0 };
    const recovered = await waitFor(
      async () => {
        const p = await handle.progress();
        lowest.window = Math.min(lowest.window, p.concurrency.current);
        lowest.refused = p.rateLimitedResponses;
        return p;
      },
      (p) => p.concurrency.current === 20 || p.status === 'completed',
      { what: 'the window to recover' },
    );
    const answeredThen = ctx.fake.stats().byStatus['200'] ?? 0;
    const result = await handle.result();
    expect(result.status).toBe('completed');
    console.log(
      `429 burst: ${lowest.refused} refused calls, window down to ${lowest.window}, back to 20 after ${answeredThen} answers`,
    );
    // Many 429s, one cut: the calls that got them were all started before it.
    expect(lowest.refused).toBeGreaterThan(1);
    expect(recovered.windowCuts).toBe(1);
    expect(lowest.window).toBeGreaterThanOrEqual(10);
    expect(recovered.concurrency.current).toBe(20);
    // Back to 20 within a few round trips of the burst (a round trip is about a window of answers).
    expect(answeredThen).toBeLessThanOrEqual(40 + 20 * 4);
  });

  test('an exhausted balance (402) pauses the batch the same way, with the server message', async () => {
    ctx.fake.configure({ revokeKeyAfterCalls: 5, revokedStatus: 402 });
    const handle = await ctx.batches.start(questions(12), { maxConcurrency: 2, autoApproveBelow: 100 });
    const paused = await waitFor(
      () => handle.progress(),
      (p) => p.status === 'awaiting_credentials',
      { what: 'the batch to wait for credentials' },
    );
    expect(paused.credentialsError).toMatchObject({ status: 402 });
    expect(paused.credentialsError!.message).toMatch(/saldo/i);
    ctx.fake.configure({ revokeKeyAfterCalls: null, revokedStatus: null });
    await handle.resume();
    const result = await handle.result();
    expectAllAnswered(result.results, 12);
  });
});
