import {
  BLOCKED_STATE,
  BatchState,
  BudgetLedger,
  MAX_AUTO_CALLS_PER_ACTIVITY,
  RUN_TARGET_MS,
  allowedInFlight,
  callsPerRun,
  decideDispatch,
  mayJoinRun,
  emptyLedger,
  type BatchEstimate,
  type DispatchCandidate,
  type DispatchView,
  type PageItem,
  type WindowEntry,
} from '../../src/shared';

const NOW = 100_000;
const candidate: DispatchCandidate = { inputTokens: 100, outputTokens: 200, maxCost: 0.1 };

/** A ledger with `budget` approved and `spent` already spent. */
function ledgerWith(budget: number | null, spent = 0): BudgetLedger {
  const ledger = new BudgetLedger(emptyLedger());
  if (budget !== null) ledger.approve({ budget, via: 'signal', at: '2025-01-01T00:00:00.000Z' });
  ledger.state.actualCost = spent;
  return ledger;
}

/** A view where the candidate may start, with `overrides`. */
function view(overrides: Partial<DispatchView> = {}): DispatchView {
  return {
    paused: false,
    inFlight: 0,
    window: 5,
    maxConcurrency: 5,
    holdUntil: 0,
    rateWindow: [],
    ledger: ledgerWith(1),
    ...overrides,
  };
}

const entry = (index: number, at: number): WindowEntry => ({
  index,
  at,
  inputTokens: 100,
  outputTokens: 200,
});

describe('decideDispatch', () => {
  test('starts when nothing blocks', () => {
    expect(decideDispatch(view(), candidate, NOW)).toEqual({ start: true });
  });

  test('paused: before anything else, until an event resumes it', () => {
    const everythingBlocks = view({ paused: true, inFlight: 5, holdUntil: NOW + 1, ledger: ledgerWith(0) });
    expect(decideDispatch(everythingBlocks, candidate, NOW)).toEqual({ start: false, reason: 'paused' });
  });

  test('window_full: the window is floored, and capped by maxConcurrency', () => {
    expect(decideDispatch(view({ inFlight: 2, window: 2.9 }), candidate, NOW)).toEqual({
      start: false,
      reason: 'window_full',
    });
    expect(decideDispatch(view({ inFlight: 1, window: 2.9 }), candidate, NOW).start).toBe(true);
    expect(decideDispatch(view({ inFlight: 3, window: 5, maxConcurrency: 3 }), candidate, NOW)).toEqual({
      start: false,
      reason: 'window_full',
    });
    // Even a window below one lets one call through.
    expect(decideDispatch(view({ window: 0.5 }), candidate, NOW).start).toBe(true);
  });

  test('retry_after: holds every start until the 429’s Retry-After has passed', () => {
    expect(decideDispatch(view({ holdUntil: NOW + 2_500 }), candidate, NOW)).toEqual({
      start: false,
      reason: 'retry_after',
      until: NOW + 2_500,
    });
    expect(decideDispatch(view({ holdUntil: NOW }), candidate, NOW).start).toBe(true);
  });

  test('rate_limit: waits until the oldest start leaves the minute (61 s), pruning what no longer counts', () => {
    const rateWindow = [entry(0, NOW - 70_000), entry(1, NOW - 50_000)];
    const decision = decideDispatch(view({ rateLimit: { rpm: 1 }, rateWindow }), candidate, NOW);
    expect(decision).toEqual({ start: false, reason: 'rate_limit', until: NOW - 50_000 + 61_000 });
    expect(rateWindow.map((e) => e.index)).toEqual([1]);
    expect(decideDispatch(view({ rateLimit: { rpm: 1 }, rateWindow }), candidate, NOW + 11_000).start).toBe(
      true,
    );
    // Tokens count too.
    const tokens = view({ rateLimit: { rpm: 100, outputTpm: 300 }, rateWindow: [entry(2, NOW - 1_000)] });
    expect(decideDispatch(tokens, candidate, NOW)).toEqual({
      start: false,
      reason: 'rate_limit',
      until: NOW + 60_000,
    });
    // Without declared limits, the window is not consulted.
    expect(decideDispatch(view({ rateWindow: [entry(3, NOW)] }), candidate, NOW).start).toBe(true);
  });

  test('budget: with calls in flight, waits for them to settle', () => {
    const ledger = ledgerWith(1, 0.5);
    ledger.reserve(0, 0.3, 0.45);
    expect(decideDispatch(view({ inFlight: 1, ledger }), candidate, NOW)).toEqual({
      start: false,
      reason: 'budget',
    });
  });

  test('awaiting_budget: with nothing in flight (or nothing approved), only a person can lift it', () => {
    expect(decideDispatch(view({ ledger: ledgerWith(1, 0.95) }), candidate, NOW)).toEqual({
      start: false,
      reason: 'awaiting_budget',
    });
    expect(decideDispatch(view({ ledger: ledgerWith(null) }), candidate, NOW)).toEqual({
      start: false,
      reason: 'awaiting_budget',
    });
    // Exactly the budget fits.
    expect(decideDispatch(view({ ledger: ledgerWith(1, 0.9) }), candidate, NOW).start).toBe(true);
  });

  test('the order of the checks: window, then Retry-After, then the rate window, then the budget', () => {
    const all = {
      holdUntil: NOW + 1_000,
      rateLimit: { rpm: 1 },
      rateWindow: [entry(0, NOW - 1_000)],
      ledger: ledgerWith(0),
    };
    expect(decideDispatch(view({ ...all, inFlight: 5 }), candidate, NOW)).toMatchObject({
      reason: 'window_full',
    });
    expect(decideDispatch(view(all), candidate, NOW)).toMatchObject({ reason: 'retry_after' });
    expect(decideDispatch(view({ ...all, holdUntil: 0 }), candidate, NOW)).toMatchObject({
      reason: 'rate_limit',
    });
    expect(decideDispatch(view({ ...all, holdUntil: 0, rateWindow: [] }), candidate, NOW)).toMatchObject({
      reason: 'awaiting_budget',
    });
  });
});

describe('runs of calls: callsPerRun and mayJoinRun', () => {
  const sizing = { setting: 'auto' as const, latencyMs: 100, queued: 10_000, slots: 10, rateLimited: false };

  test('auto: one call until latency is known, then about RUN_TARGET_MS of calls, capped', () => {
    expect(callsPerRun({ ...sizing, latencyMs: null })).toBe(1);
    expect(callsPerRun(sizing)).toBe(RUN_TARGET_MS / 100);
    expect(callsPerRun({ ...sizing, latencyMs: 1 })).toBe(MAX_AUTO_CALLS_PER_ACTIVITY);
    expect(callsPerRun({ ...sizing, latencyMs: 0 })).toBe(MAX_AUTO_CALLS_PER_ACTIVITY);
    // Calls as long as a run's target go one per activity.
    expect(callsPerRun({ ...sizing, latencyMs: RUN_TARGET_MS })).toBe(1);
    expect(callsPerRun({ ...sizing, latencyMs: 60_000 })).toBe(1);
  });

  test('a fixed setting is taken as it is; per-minute limits always go one call per activity', () => {
    expect(callsPerRun({ ...sizing, setting: 7, latencyMs: null })).toBe(7);
    expect(callsPerRun({ ...sizing, setting: 1 })).toBe(1);
    expect(callsPerRun({ ...sizing, rateLimited: true })).toBe(1);
    expect(callsPerRun({ ...sizing, setting: 7, rateLimited: true })).toBe(1);
  });

  test('a run never takes more than an even share of what is queued, so the end spreads over every slot', () => {
    expect(callsPerRun({ ...sizing, queued: 35 })).toBe(4);
    expect(callsPerRun({ ...sizing, queued: 10 })).toBe(1);
    expect(callsPerRun({ ...sizing, queued: 0 })).toBe(1);
    expect(callsPerRun({ ...sizing, setting: 50, queued: 100 })).toBe(10);
  });

  test('joining a run ignores the window (the run holds its slot) but not a pause, a hold or the budget', () => {
    const full = view({ inFlight: 5 });
    expect(decideDispatch(full, candidate, NOW)).toMatchObject({ start: false, reason: 'window_full' });
    expect(mayJoinRun(full, candidate, NOW)).toBe(true);
    expect(mayJoinRun(view({ paused: true }), candidate, NOW)).toBe(false);
    expect(mayJoinRun(view({ holdUntil: NOW + 1 }), candidate, NOW)).toBe(false);
    expect(mayJoinRun(view({ ledger: ledgerWith(0.05) }), candidate, NOW)).toBe(false);
  });
});

describe('allowedInFlight and BLOCKED_STATE', () => {
  test('allowedInFlight floors the window and keeps it within [1, max]', () => {
    expect(allowedInFlight(2.9, 5)).toBe(2);
    expect(allowedInFlight(5, 5)).toBe(5);
    expect(allowedInFlight(8, 3)).toBe(3);
    expect(allowedInFlight(0.5, 5)).toBe(1);
  });

  test('each reason shows the status and waitingFor the progress query reports', () => {
    expect(BLOCKED_STATE).toEqual({
      paused: { status: 'paused', waitingFor: 'pause' },
      awaiting_credentials: { status: 'awaiting_credentials', waitingFor: 'credentials' },
      api_unavailable: { status: 'running', waitingFor: 'api_unavailable' },
      api_failing: { status: 'running', waitingFor: null },
      window_full: { status: 'running', waitingFor: null },
      retry_after: { status: 'running', waitingFor: 'retry_after' },
      rate_limit: { status: 'running', waitingFor: 'rate_limit' },
      budget: { status: 'running', waitingFor: 'budget' },
      awaiting_budget: { status: 'awaiting_budget', waitingFor: 'budget' },
      key_lease: { status: 'running', waitingFor: 'rate_limit' },
    });
  });
});

describe('BatchState carried across continue-as-new', () => {
  const item = (index: number): PageItem => ({
    index,
    call: {
      requestId: `r${index}`,
      model: 'sabiazinho-4',
      messages: [{ role: 'user', content: `pergunta ${index}` }],
      maxTokens: 50,
    },
    inputTokens: 10,
    cost: 0.01,
    maxCost: 0.02,
  });
  const estimate: BatchEstimate = {
    totalRequests: 20,
    totalInputTokens: 200,
    totalOutputTokens: 1000,
    inputCost: 0.05,
    outputCost: 0.15,
    totalCost: 0.2,
    currency: 'BRL',
    model: 'sabiazinho-4',
    maxCost: 0.4,
  };

  test('toCarried → new BatchState(…, carried) keeps every field and counts one more run', () => {
    let clock = Date.UTC(2025, 0, 1);
    const options = { maxConcurrency: 4, startedAt: new Date(clock).toISOString(), now: () => clock };
    const state = new BatchState(options);
    state.setEstimate(estimate);
    state.approve(0.1, 'signal', 'ana');
    state.approve(0.3, 'update', 'bia');
    state.openPage(0, 10);
    state.openPage(10, 20);
    state.markRunning();
    state.setResults({ type: 'objects', url: 's3://batches/b1/outcomes' });
    const buffer = Array.from({ length: 6 }, (_, i) => item(i));
    for (let i = 0; i < 4; i++) {
      state.takeNext(buffer, buffer[0]!);
      state.startCall(item(i), true);
    }
    clock += 1_000;
    state.callSucceeded(item(0), { cost: 0.015, usage: { promptTokens: 9, completionTokens: 30 } });
    state.settle(0);
    state.callEnded(0);
    expect(state.callRateLimited(item(1), 5_000, 1, 3)).toBe(true);
    state.callEnded(1);
    state.callFailed(2);
    state.settle(2);
    state.callEnded(2);
    state.callSucceeded(item(3), { cost: 0.01, usage: { promptTokens: 10, completionTokens: 20 } });
    state.settle(3);
    state.callEnded(3);
    state.setPaused(true);

    const cursor = { startIndex: 0, byteOffset: 0 };
    const carried = JSON.parse(JSON.stringify(state.toCarried(cursor))) as ReturnType<
      BatchState['toCarried']
    >;
    expect(carried).toMatchObject({
      run: 1,
      nextIndex: 4,
      succeeded: 2,
      failed: 1,
      actualCost: 0.025,
      dispatchedCost: 0.03,
      dispatchedMaxCost: 0.06,
      maxConcurrency: 4,
      paused: true,
      holdUntil: Date.UTC(2025, 0, 1) + 6_000,
      rateLimitedResponses: 1,
      priorAttempts: { 1: 1 },
      results: { type: 'objects', url: 's3://batches/b1/outcomes' },
      openPages: [
        { start: 0, end: 10, settled: 3 },
        { start: 10, end: 20, settled: 0 },
      ],
      estimate,
    });
    expect(carried.approvals.map((a) => [a.budget, a.via, a.approvedBy])).toEqual([
      [0.1, 'signal', 'ana'],
      [0.3, 'update', 'bia'],
    ]);
    expect(carried.retryQueue).toEqual([item(1)]);
    expect(carried.rateWindow.map((e) => e.index)).toEqual([0, 1, 2, 3]);
    expect(carried.rateWindow[0]).toMatchObject({ inputTokens: 9, outputTokens: 30 });
    // Halved by the 429, then grown by one success.
    expect(carried.window).toBeCloseTo(2 + 1 / 2);

    clock += 60_000;
    const restored = new BatchState(options, carried);
    expect(restored.toCarried(cursor)).toEqual({ ...carried, run: 2 });
    expect(restored.view.status).toBe('running');
    expect(restored.view.inFlight).toBe(0);
    expect(restored.ledger.budgetState()).toEqual(state.ledger.budgetState());
    expect(restored.ledger.neededToFinish).toBe(state.ledger.neededToFinish);
    expect(restored.allowedInFlight).toBe(state.allowedInFlight);
    expect(restored.priorAttemptsOf(1)).toBe(1);
    // Same figures in the progress query (a continued run is running; when it updated differs).
    const { updatedAt: _a, status: _s, ...before } = state.progress(20);
    const { updatedAt: _b, status: _t, ...after } = restored.progress(20);
    expect(after).toEqual(before);
  });

  test('the cursor given to toCarried is where the next run resumes paging', () => {
    const state = new BatchState({ maxConcurrency: 2, startedAt: '2025-01-01T00:00:00.000Z', now: () => 0 });
    expect(state.toCarried({ startIndex: 500, byteOffset: 12_345 })).toMatchObject({
      pageStartIndex: 500,
      byteOffset: 12_345,
      run: 1,
    });
  });
});

describe('BatchState: exact reservations, learned overhead and unconfirmed spend', () => {
  /** A sabia-4 request of two messages whose content counts 100 tokens, estimated with 16 + 16/message. */
  const exactItem = (index: number): PageItem => ({
    index,
    call: {
      requestId: `r${index}`,
      model: 'sabia-4',
      messages: [
        { role: 'system', content: 's' },
        { role: 'user', content: `pergunta ${index}` },
      ],
      maxTokens: 30,
    },
    inputTokens: 148,
    cost: (148 * 5 + 30 * 20) / 1e6,
    maxCost: (148 * 5 + 30 * 20) / 1e6,
    contentTokens: 100,
    price: { input: 5, output: 20 },
  });
  const running = () => {
    const state = new BatchState({ maxConcurrency: 4, startedAt: '2025-01-01T00:00:00.000Z', now: () => 0 });
    state.approve(1, 'signal');
    return state;
  };

  test('an answer teaches the overhead; the next request like it reserves exactly', () => {
    const state = running();
    expect(state.reservationOf(exactItem(0)).maxCost).toBeCloseTo((148 * 5 + 30 * 20) / 1e6, 12);
    state.startCall(exactItem(0), false);
    // Maritaca billed 113 prompt tokens: the template added 13 to the 100 of content.
    state.callSucceeded(exactItem(0), {
      cost: (113 * 5 + 30 * 20) / 1e6,
      usage: { promptTokens: 113, completionTokens: 30 },
    });
    state.callEnded(0);
    expect(state.view.templateOverheads).toEqual({ 'sabia-4/2': 13 });
    expect(state.reservationOf(exactItem(1))).toEqual({
      inputTokens: 113,
      outputTokens: 30,
      maxCost: (113 * 5 + 30 * 20) / 1e6,
    });
    expect(state.learnedOverhead()).toEqual({ 'sabia-4': { perRequest: 0, perMessage: 6.5 } });
    expect(state.toCarried({ startIndex: 1, byteOffset: 0 }).templateOverheads).toEqual({ 'sabia-4/2': 13 });
  });

  test('an answer without usage, and a call whose outcome is unknown, count at their worst case', () => {
    const state = running();
    const worst = exactItem(0).maxCost;
    state.startCall(exactItem(0), false);
    state.callSucceeded(exactItem(0), {
      cost: 0,
      usage: { promptTokens: 0, completionTokens: 0 },
      usageMissing: true,
    });
    state.callEnded(0);
    state.startCall(exactItem(1), false);
    state.callOutcomeUnknown(1);
    state.callRetrying(exactItem(1), 1, 5_000);
    state.callEnded(1);
    expect(state.ledger.spent).toBeCloseTo(2 * worst, 12);
    expect(state.ledger.unconfirmed).toBeCloseTo(2 * worst, 12);
    expect(state.view.actualCost).toBe(0);
    expect(state.view.templateOverheads).toEqual({});
    // The retry waits for its backoff, then goes before the requests never started.
    expect(state.nextRequest([exactItem(2)], 4_999)?.index).toBe(2);
    expect(state.nextRetryAt(4_999)).toBe(5_000);
    expect(state.nextRequest([exactItem(2)], 5_000)?.index).toBe(1);
    expect(state.priorAttemptsOf(1)).toBe(1);
  });
});
