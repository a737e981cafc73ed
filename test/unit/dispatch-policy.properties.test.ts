import fc from 'fast-check';
import {
  BatchState,
  COST_EPSILON,
  RATE_WINDOW_MARGIN_MS,
  allowedInFlight,
  decideDispatch,
  rateWaitMs,
  type FailureRules,
  type JudgedFailure,
  type PageItem,
} from '../../src/shared';
import {
  billedEventsArb,
  exactScenarioArb,
  healthEventsArb,
  healthScenarioArb,
  leasedEventsArb,
  leasedScenarioArb,
  scenarioArb,
  simEventsArb,
  simulate,
  type DispatchPolicy,
  type SimProperty,
  type StateFactory,
  type StateOptions,
} from '../helpers/batch-simulator';

/**
 * Flow control under random sequences of events (starts, answers costing up to their worst case,
 * 429s with random Retry-After, failures, approvals, pauses, resizes, clock advances), each
 * sequence followed by a drain that finishes the batch. Every property runs on the real policy
 * and state, and again on a deliberately broken one that it must catch.
 */

const RUNS = 1000;

interface Broken {
  policy?: DispatchPolicy;
  createState?: StateFactory;
}

/** Situations a property is about, counted over the runs so a property cannot hold vacuously. */
type Seen = Record<'budgetBlocks' | 'rateBlocks' | 'awaitingBudget' | 'windowFull' | 'requeues', number>;

function newSeen(): Seen {
  return { budgetBlocks: 0, rateBlocks: 0, awaitingBudget: 0, windowFull: 0, requeues: 0 };
}

/** The property that `property` is never violated, with the policy and state given. */
function holds(
  property: SimProperty,
  broken: Broken = {},
  rateLimit: 'always' | 'sometimes' = 'sometimes',
  seen: Seen = newSeen(),
) {
  return fc.property(scenarioArb(rateLimit), simEventsArb, (scenario, events) => {
    const sim = simulate(scenario, events, broken);
    for (const d of sim.decisions) {
      if (d.start) continue;
      if (d.reason === 'budget') seen.budgetBlocks++;
      if (d.reason === 'rate_limit') seen.rateBlocks++;
      if (d.reason === 'awaiting_budget') seen.awaitingBudget++;
      if (d.reason === 'window_full') seen.windowFull++;
    }
    seen.requeues += sim.records.reduce((n, r) => n + r.requeues, 0);
    const violations = sim.violationsOf(property);
    if (violations.length > 0) {
      throw new Error(violations.map((v) => `step ${v.step}: ${v.message}`).join('\n'));
    }
  });
}

/** Runs a broken variant and returns how it failed (the property must catch it). */
function mustFail(property: SimProperty, broken: Broken, rateLimit: 'always' | 'sometimes' = 'sometimes') {
  const result = fc.check(holds(property, broken, rateLimit), { numRuns: RUNS, endOnFailure: true });
  expect(result.failed).toBe(true);
  return String(result.errorInstance);
}

/** Mutable access to the fields a broken state tampers with. */
type Tamper = { window: number; retryQueue: PageItem[]; templateOverheads: Record<string, number> };
const tamper = (state: BatchState) => state.view as unknown as Tamper;

/** Ignores the budget: starts whatever the ledger says. */
const ignoresBudget: DispatchPolicy = (view, candidate, now) => {
  const decision = decideDispatch(view, candidate, now);
  return !decision.start && (decision.reason === 'budget' || decision.reason === 'awaiting_budget')
    ? { start: true }
    : decision;
};

/** Forgets the reservations of calls in flight: measures only what was spent against the budget. */
const forgetsReservations: DispatchPolicy = (view, candidate, now) => {
  const decision = decideDispatch(view, candidate, now);
  const fitsSpent = view.ledger.spent + candidate.maxCost <= (view.ledger.approved ?? 0) + COST_EPSILON;
  return !decision.start && decision.reason === 'budget' && fitsSpent ? { start: true } : decision;
};

/** Ignores the per-minute window. */
const ignoresRateWindow: DispatchPolicy = (view, candidate, now) => {
  const { rateLimit: _ignored, ...rest } = view;
  return decideDispatch(rest, candidate, now);
};

/** Counts starts for 60 s instead of 61: forgets the margin for a call reaching Maritaca late. */
const forgetsRateMargin: DispatchPolicy = (view, candidate, now) => {
  const { rateLimit, ...rest } = view;
  const decision = decideDispatch(rest, candidate, now);
  if (!decision.start || !rateLimit) return decision;
  const wait = rateWaitMs(
    view.rateWindow,
    rateLimit,
    now + RATE_WINDOW_MARGIN_MS,
    candidate.inputTokens,
    candidate.outputTokens,
  );
  return wait > 0 ? { start: false, reason: 'rate_limit', until: now + wait } : decision;
};

/** Counts requests against the minute but not their tokens. */
const ignoresTokens: DispatchPolicy = (view, candidate, now) =>
  decideDispatch(view, { ...candidate, inputTokens: 0, outputTokens: 0 }, now);

/** Asks a person for budget whenever the next call does not fit, even with calls in flight. */
const awaitsBudgetEarly: DispatchPolicy = (view, candidate, now) => {
  const decision = decideDispatch(view, candidate, now);
  return !decision.start && decision.reason === 'budget'
    ? { start: false, reason: 'awaiting_budget' }
    : decision;
};

/** Lets one more call in flight than the window (and the cap) allow. */
const windowOffByOne: DispatchPolicy = (view, candidate, now) =>
  decideDispatch(
    { ...view, window: view.window + 1, maxConcurrency: view.maxConcurrency + 1 },
    candidate,
    now,
  );

/** Lowering the cap leaves the window where it was, above the new cap. */
class ResizeKeepsWindow extends BatchState {
  override setConcurrency(concurrency: number): void {
    const before = this.view.window;
    super.setConcurrency(concurrency);
    tamper(this).window = before;
  }
}

/** A 429 halves the window with no floor, so it drops below one call. */
class BackoffWithoutFloor extends BatchState {
  override callRateLimited(item: PageItem, retryAfterMs: number, attempts: number, maximum: number): boolean {
    const before = this.view.window;
    const requeued = super.callRateLimited(item, retryAfterMs, attempts, maximum);
    tamper(this).window = before / 2;
    return requeued;
  }
}

/** Starting a retried request leaves it at the head of the retry queue: it starts twice. */
class RetryStaysQueued extends BatchState {
  override takeNext(buffer: PageItem[], item: PageItem): void {
    if (this.view.retryQueue.includes(item)) return;
    super.takeNext(buffer, item);
  }
}

/** A 429 says the request went back to the queue, but it is lost. */
class RetryLost extends BatchState {
  override callRateLimited(item: PageItem, retryAfterMs: number, attempts: number, maximum: number): boolean {
    const requeued = super.callRateLimited(item, retryAfterMs, attempts, maximum);
    if (requeued) tamper(this).retryQueue.pop();
    return requeued;
  }
}

const stateOf =
  (Kind: new (options: StateOptions) => BatchState): StateFactory =>
  (options) =>
    new Kind(options);

describe('budget: spent plus reserved never passes the approved budget', () => {
  test(`holds for the real policy (${RUNS} sequences)`, () => {
    const seen = newSeen();
    fc.assert(holds('budget', {}, 'sometimes', seen), { numRuns: RUNS });
    expect(seen.budgetBlocks).toBeGreaterThan(0);
    expect(seen.awaitingBudget).toBeGreaterThan(0);
  });

  test('fails for a policy that ignores the budget', () => {
    expect(mustFail('budget', { policy: ignoresBudget })).toMatch(/> approved/);
  });

  test('fails for a policy that forgets the reservations of calls in flight', () => {
    expect(mustFail('budget', { policy: forgetsReservations })).toMatch(/> approved/);
  });
});

/** Learns a template overhead one token below what answers show: reservations fall short of the bill. */
class LearnsTooLittle extends BatchState {
  override callSucceeded(item: PageItem, output: Parameters<BatchState['callSucceeded']>[1]): void {
    super.callSucceeded(item, output);
    const learned = tamper(this).templateOverheads;
    for (const key of Object.keys(learned)) learned[key] = Math.max(0, learned[key]! - 1);
  }
}

/** Never re-prices with what it learned, and reserves one token per byte as before exact counts. */
class ReservesByteBound extends BatchState {
  override reservationOf(item: PageItem): ReturnType<BatchState['reservationOf']> {
    const reservation = super.reservationOf(item);
    return { ...reservation, maxCost: reservation.maxCost * 3.6 };
  }
}

/** Counts nothing for a call whose outcome is unknown, though Maritaca may have billed it. */
class ForgetsLostCalls extends BatchState {
  override callOutcomeUnknown(index: number): void {
    this.ledger.release(index);
  }
}

describe('budget with exact counts and a real template overhead the batch must learn', () => {
  /** No violation of `property`, and with `budget: 'estimate'` no second approval was needed. */
  const exactHolds = (budget: 'estimate' | 'random', broken: Broken = {}, seen = newSeen()) =>
    fc.property(
      exactScenarioArb(budget),
      budget === 'estimate' ? billedEventsArb : simEventsArb,
      (scenario, events) => {
        const sim = simulate(scenario, events, broken);
        seen.awaitingBudget += sim.decisions.filter((d) => !d.start && d.reason === 'awaiting_budget').length;
        const violations = sim.violationsOf('budget');
        if (violations.length > 0)
          throw new Error(violations.map((v) => `step ${v.step}: ${v.message}`).join('\n'));
        if (budget === 'estimate' && sim.extraApprovals > 0)
          throw new Error(`approving the estimate was not enough: ${sim.extraApprovals} more approval(s)`);
      },
    );

  test(`spend stays within the budget, lost calls counted at their worst case (${RUNS} sequences)`, () => {
    const seen = newSeen();
    fc.assert(exactHolds('random', {}, seen), { numRuns: RUNS });
    expect(seen.awaitingBudget).toBeGreaterThan(0);
  });

  test(`approving the estimate always lets the batch finish (${RUNS} sequences)`, () => {
    fc.assert(exactHolds('estimate'), { numRuns: RUNS });
  });

  test('fails when the learned overhead is below what Maritaca bills', () => {
    const result = fc.check(exactHolds('random', { createState: stateOf(LearnsTooLittle) }), {
      numRuns: RUNS,
      endOnFailure: true,
    });
    expect(result.failed).toBe(true);
    expect(String(result.errorInstance)).toMatch(/> reserved/);
  });

  test('fails to finish on the estimate when reservations use the byte bound', () => {
    const result = fc.check(exactHolds('estimate', { createState: stateOf(ReservesByteBound) }), {
      numRuns: RUNS,
      endOnFailure: true,
    });
    expect(result.failed).toBe(true);
    expect(String(result.errorInstance)).toMatch(/not enough/);
  });

  test('fails when a lost call is not counted', () => {
    expect(mustFail('budget', { createState: stateOf(ForgetsLostCalls) })).toMatch(/disagrees|> approved/);
  });
});

describe('rate: a declared per-minute limit is never exceeded', () => {
  test(`holds for the real policy (${RUNS} sequences)`, () => {
    const seen = newSeen();
    fc.assert(holds('rate', {}, 'always', seen), { numRuns: RUNS });
    expect(seen.rateBlocks).toBeGreaterThan(0);
  });

  test('fails for a policy that ignores the rate window', () => {
    expect(mustFail('rate', { policy: ignoresRateWindow }, 'always')).toMatch(/within a minute/);
  });

  test('fails for a policy that counts a start for 60 s, without the margin', () => {
    expect(mustFail('rate', { policy: forgetsRateMargin }, 'always')).toMatch(/within a minute/);
  });

  test('fails for a policy that counts requests but not tokens', () => {
    expect(mustFail('rate', { policy: ignoresTokens }, 'always')).toMatch(/tokens within a minute/);
  });
});

describe('awaiting_budget only with nothing in flight', () => {
  test(`holds for the real policy (${RUNS} sequences)`, () => {
    const seen = newSeen();
    fc.assert(holds('awaitingBudget', {}, 'sometimes', seen), { numRuns: RUNS });
    expect(seen.awaitingBudget).toBeGreaterThan(0);
    expect(seen.budgetBlocks).toBeGreaterThan(0);
  });

  test('fails for a policy that asks for budget while calls are in flight', () => {
    expect(mustFail('awaitingBudget', { policy: awaitsBudgetEarly })).toMatch(/in flight/);
  });
});

describe('window: within [1, maxConcurrency], and no start past it', () => {
  test(`allowedInFlight stays within [1, max] for any window (${RUNS} values)`, () => {
    const inRange = (allowed: (window: number, max: number) => number) =>
      fc.property(
        fc.double({ min: -10, max: 100, noNaN: true }),
        fc.integer({ min: 1, max: 50 }),
        (w, max) => {
          const n = allowed(w, max);
          return Number.isInteger(n) && n >= 1 && n <= max;
        },
      );
    fc.assert(inRange(allowedInFlight), { numRuns: RUNS });
    const unclamped = fc.check(
      inRange((w) => Math.floor(w)),
      { numRuns: RUNS, endOnFailure: true },
    );
    expect(unclamped.failed).toBe(true);
  });

  test(`holds for the real policy and state (${RUNS} sequences)`, () => {
    const seen = newSeen();
    fc.assert(holds('window', {}, 'sometimes', seen), { numRuns: RUNS });
    expect(seen.windowFull).toBeGreaterThan(0);
    expect(seen.requeues).toBeGreaterThan(0);
  });

  test('fails for a policy that lets one call more than the window start', () => {
    expect(mustFail('window', { policy: windowOffByOne })).toMatch(/window allows/);
  });

  test('fails for a state whose resize leaves the window above the new cap', () => {
    expect(mustFail('window', { createState: stateOf(ResizeKeepsWindow) })).toMatch(/outside \[1/);
  });

  test('fails for a state whose 429 back-off has no floor', () => {
    expect(mustFail('window', { createState: stateOf(BackoffWithoutFloor) })).toMatch(/outside \[1/);
  });
});

describe('settlement: every start is settled or requeued exactly once', () => {
  test(`holds for the real policy and state (${RUNS} sequences, each drained)`, () => {
    const seen = newSeen();
    fc.assert(holds('settlement', {}, 'sometimes', seen), { numRuns: RUNS });
    expect(seen.requeues).toBeGreaterThan(0);
  });

  test('fails for a state that starts a retried request twice', () => {
    expect(mustFail('settlement', { createState: stateOf(RetryStaysQueued) })).toMatch(
      /started again without being sent back|settled 2 times/,
    );
  });

  test('fails for a state that loses a request it sent back', () => {
    expect(mustFail('settlement', { createState: stateOf(RetryLost) })).toMatch(/settled 0 times at the end/);
  });
});

/** Outages, refused keys and 429 cuts, judged batch-wide (scenarios with `apiHealth`). */
function healthHolds(property: SimProperty, broken: Broken = {}, seen = { outages: 0, cuts: 0 }) {
  return fc.property(healthScenarioArb, healthEventsArb, (scenario, events) => {
    const sim = simulate(scenario, events, broken);
    seen.outages += sim.outagesSeen;
    seen.cuts += sim.decisions.filter((d) => !d.start && d.reason === 'retry_after').length;
    const violations = sim.violationsOf(property);
    if (violations.length > 0) {
      throw new Error(violations.map((v) => `step ${v.step}: ${v.message}`).join('\n'));
    }
  });
}

function healthMustFail(property: SimProperty, broken: Broken): string {
  // A broken variant shows only when several events line up (a streak, a probe, a second 429 to
  // an older call): more sequences, stopping at the first that catches it.
  const result = fc.check(healthHolds(property, broken), { numRuns: 20 * RUNS, endOnFailure: true });
  expect(result.failed).toBe(true);
  return String(result.errorInstance);
}

/** Ignores an outage: starts every call as usual while Maritaca is down. */
const ignoresOutage: DispatchPolicy = (view, candidate, now) => {
  const { outage: _ignored, ...rest } = view;
  return decideDispatch(rest, candidate, now);
};

/** Sends probes without waiting for the one in flight. */
const probesInParallel: DispatchPolicy = (view, candidate, now) =>
  decideDispatch(
    view.outage ? { ...view, outage: { ...view.outage, probing: false } } : view,
    candidate,
    now,
  );

/** Ignores a refused key. */
const ignoresCredentials: DispatchPolicy = (view, candidate, now) =>
  decideDispatch({ ...view, credentialsRefused: false }, candidate, now);

/** Counts Maritaca's failures against requests even during an outage. */
class OutageCountsAttempts extends BatchState {
  override callFailedWith(item: PageItem, failure: JudgedFailure, rules: FailureRules) {
    if (!this.view.outage) return super.callFailedWith(item, failure, rules);
    const { apiHealth: _off, ...plain } = rules;
    return super.callFailedWith(item, failure, plain);
  }
}

/** Cuts the window on every 429, however old the call it answers. */
class CutsOnEvery429 extends BatchState {
  override callRateLimited(item: PageItem, retryAfterMs: number, attempts: number, maximum: number): boolean {
    return super.callRateLimited(item, retryAfterMs, attempts, maximum, false);
  }
}

describe('outages, refused keys and 429s: batch-wide events', () => {
  test(`during an outage only one probe at a time starts (${RUNS} sequences)`, () => {
    const seen = { outages: 0, cuts: 0 };
    fc.assert(healthHolds('probe', {}, seen), { numRuns: RUNS });
    expect(seen.outages).toBeGreaterThan(0);
  });

  test('fails for a policy that ignores the outage, or probes in parallel', () => {
    expect(healthMustFail('probe', { policy: ignoresOutage })).toMatch(/not as a probe/);
    expect(healthMustFail('probe', { policy: probesInParallel })).toMatch(/second probe/);
  });

  test(`no request fails for good on Maritaca's failures during an outage (${RUNS} sequences)`, () => {
    fc.assert(healthHolds('outage'), { numRuns: RUNS });
  });

  test('fails for a state that counts attempts during an outage', () => {
    expect(healthMustFail('outage', { createState: stateOf(OutageCountsAttempts) })).toMatch(
      /failed for good/,
    );
  });

  test(`nothing starts while the batch awaits credentials (${RUNS} sequences)`, () => {
    fc.assert(healthHolds('credentials'), { numRuns: RUNS });
  });

  test('fails for a policy that ignores a refused key', () => {
    expect(healthMustFail('credentials', { policy: ignoresCredentials })).toMatch(/awaiting credentials/);
  });

  test(`a 429 to a call started before the last cut does not cut again (${RUNS} sequences)`, () => {
    const seen = { outages: 0, cuts: 0 };
    fc.assert(healthHolds('cutOnce', {}, seen), { numRuns: RUNS });
    expect(seen.cuts).toBeGreaterThan(0);
  });

  test('fails for a state that cuts the window on every 429', () => {
    expect(healthMustFail('cutOnce', { createState: stateOf(CutsOnEvery429) })).toMatch(
      /cut the window again/,
    );
  });

  test(`budget, window and settlement still hold with outages and refused keys (${RUNS} sequences)`, () => {
    for (const property of ['budget', 'window', 'settlement'] as const) {
      fc.assert(healthHolds(property), { numRuns: RUNS / 2 });
    }
  });
});

describe("a key's shared limit: starts within the lease", () => {
  const leaseHolds = (property: SimProperty, broken: Broken = {}, seen = { leaseBlocks: 0 }) =>
    fc.property(leasedScenarioArb, leasedEventsArb, (scenario, events) => {
      const sim = simulate(scenario, events, broken);
      seen.leaseBlocks += sim.decisions.filter((d) => !d.start && d.reason === 'key_lease').length;
      const violations = sim.violationsOf(property);
      if (violations.length > 0)
        throw new Error(violations.map((v) => `step ${v.step}: ${v.message}`).join('\n'));
    });

  test(`combined starts stay within what the key's limiter granted (${RUNS} sequences)`, () => {
    const seen = { leaseBlocks: 0 };
    fc.assert(leaseHolds('lease', {}, seen), { numRuns: RUNS });
    expect(seen.leaseBlocks).toBeGreaterThan(0);
  });

  test('fails for a policy that ignores the lease', () => {
    const ignoresLease: DispatchPolicy = (view, candidate, now) => {
      const { keyLease: _ignored, ...rest } = view;
      return decideDispatch(rest, candidate, now);
    };
    const result = fc.check(leaseHolds('lease', { policy: ignoresLease }), {
      numRuns: RUNS,
      endOnFailure: true,
    });
    expect(result.failed).toBe(true);
    expect(String(result.errorInstance)).toMatch(/beyond the lease/);
  });

  test(`budget, settlement and probes still hold under leases (${RUNS} sequences)`, () => {
    for (const property of ['budget', 'settlement', 'probe', 'credentials'] as const) {
      fc.assert(leaseHolds(property), { numRuns: RUNS / 2 });
    }
  });
});
