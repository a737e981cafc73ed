import fc from 'fast-check';
import {
  BatchState,
  COST_EPSILON,
  RATE_WINDOW_MARGIN_MS,
  RATE_WINDOW_MS,
  FailureTypes,
  allowedInFlight,
  decideDispatch,
  type FailureRules,
  type JudgedFailure,
  type DispatchCandidate,
  type DispatchDecision,
  type DispatchView,
  type PageItem,
  type RateLimits,
  DEFAULT_TEMPLATE_OVERHEAD,
  templateTokens,
  type TemplateOverhead,
} from '../../src/shared';

/**
 * A deterministic simulator of the workflow's dispatch loop (src/workflows/dispatch.ts) over the
 * real {@link BatchState} and an injected dispatch policy, on a simulated clock. It applies a
 * generated sequence of events (starts, answers, 429s, failures, approvals, pauses, resizes,
 * clock advances), keeps its own independent tally of what happened, and checks the flow-control
 * invariants after every event. Policies and states are injectable, so a deliberately broken one
 * can be shown to trip the checks.
 */

/** Same shape as `decideDispatch`. */
export type DispatchPolicy = (
  view: DispatchView,
  candidate: DispatchCandidate,
  now: number,
) => DispatchDecision;

/** Options the simulator builds its {@link BatchState} with. */
export interface StateOptions {
  maxConcurrency: number;
  startedAt: string;
  now: () => number;
}

/** Makes the batch state (a broken subclass can be injected). */
export type StateFactory = (options: StateOptions) => BatchState;

/** One request of a simulated batch: what the page loader would have priced. */
export interface SimItem {
  inputTokens: number;
  maxTokens: number;
  /** Estimated cost, at most `maxCost`. */
  cost: number;
  /** Worst-case cost: what a start reserves. */
  maxCost: number;
  /**
   * A prompt counted exactly: its content tokens, message count and prices (BRL per million).
   * Its `inputTokens` are then content plus the template figure the estimate used, and the
   * answer's real usage follows the scenario's `templateOverhead`.
   */
  exact?: { contentTokens: number; messages: number; price: { input: number; output: number } };
}

/** A batch to simulate. */
export interface SimScenario {
  items: SimItem[];
  maxConcurrency: number;
  /** The first approval (the batch starts running once approved). */
  initialBudget: number;
  /** Attempts a request may spend on 429s before it fails for good. */
  maximumAttempts: number;
  rateLimit?: RateLimits;
  /** The chat template's real overhead, which exactly counted requests are billed (unknown to the batch). */
  templateOverhead?: TemplateOverhead;
  /**
   * Failures judged as the workflow judges them since outages became batch-wide events
   * (`BatchState.callFailedWith`): a breaker with probes, a pause for refused keys, one window
   * cut per round trip. Unset: the judgement of earlier versions, call by call.
   */
  apiHealth?: NonNullable<FailureRules['apiHealth']>;
  /** The key's limits are shared: every start spends capacity leased from the key's limiter. */
  keyLeases?: boolean;
}

/** Something that happens to a running batch. `pick` chooses a call in flight (modulo their number). */
export type SimEvent =
  | { kind: 'tryStart' }
  | { kind: 'succeed'; pick: number; costFraction: number; usageFraction: number }
  | { kind: 'rateLimited'; pick: number; retryAfterMs: number }
  | { kind: 'fail'; pick: number }
  /** The call's outcome is unknown (timed out, worker lost): counted at its worst case, then retried. */
  | { kind: 'lost'; pick: number }
  /** Answered and billed (up to the reservation), but not with the JSON asked for: asked again, at most twice. */
  | { kind: 'offSchema'; pick: number; costFraction: number }
  /** Maritaca fails the call itself (a 5xx, a lost connection; `billed`: a timeout that may have been billed). */
  | { kind: 'apiFailure'; pick: number; billed: boolean }
  /** Maritaca refuses the key (401). */
  | { kind: 'credentialsRefused'; pick: number }
  /** The key's limiter grants capacity (when the scenario shares a key's limits). */
  | { kind: 'lease'; requests: number; inputTokens: number; outputTokens: number }
  | { kind: 'approve'; extra: number }
  | { kind: 'pause' }
  | { kind: 'resume' }
  | { kind: 'resize'; concurrency: number }
  | { kind: 'advance'; ms: number };

/** The invariants the simulator checks. */
export type SimProperty =
  | 'budget'
  | 'rate'
  | 'awaitingBudget'
  | 'window'
  | 'settlement'
  /** During an outage only probes start, one at a time. */
  | 'probe'
  /** Nothing starts while the batch waits for credentials. */
  | 'credentials'
  /** No request fails for good on a failure of Maritaca's during (or declaring) an outage. */
  | 'outage'
  /** A 429 to a call started before the last window cut does not cut again. */
  | 'cutOnce'
  /** Starts never take more requests or tokens than the key's limiter granted. */
  | 'lease';

/** A broken invariant: which, at which step, and how. */
export interface Violation {
  property: SimProperty;
  step: number;
  message: string;
}

/** What the simulator records of each request. */
export interface RequestRecord {
  /** Clock time of every start. */
  starts: number[];
  /** Outcomes given for good (success, or failure). */
  settles: number;
  /** Times a 429 sent it back to the queue. */
  requeues: number;
}

interface InFlightCall {
  item: PageItem;
  /** What the policy was told the call would hold when it started. */
  reserved: number;
  /** Position of this start in `startLog`. */
  start: number;
  /** Started as an outage's probe. */
  probe: boolean;
  /** Its place among every start of the batch (1 for the first). */
  seq: number;
}

/** One start as the rate limits see it: the tokens it counts (reserved, then the reported usage). */
interface StartLogEntry {
  index: number;
  at: number;
  inputTokens: number;
  outputTokens: number;
}

/** A fixed, valid epoch for the simulated clock. */
export const SIM_EPOCH = Date.UTC(2025, 0, 1);

const MAX_VIOLATIONS = 20;

/** The simulator: build it, {@link BatchSimulator.run} events, then {@link BatchSimulator.drain}. */
export class BatchSimulator {
  /** Simulated workflow time (ms). */
  clock = SIM_EPOCH;
  readonly state: BatchState;
  readonly records: RequestRecord[];
  readonly violations: Violation[] = [];
  /** `inFlight` the batch had each time the policy answered `awaiting_budget`. */
  readonly awaitingBudgetInFlight: number[] = [];
  /** Every decision the policy gave, in order. */
  readonly decisions: DispatchDecision[] = [];
  /** Approvals the drain had to add because the batch asked for more. */
  extraApprovals = 0;
  /** Outages the batch declared (so an outage property cannot hold vacuously). */
  outagesSeen = 0;
  /** Capacity the key's limiter granted and starts have not used. */
  private readonly leased = { requests: 0, inputTokens: 0, outputTokens: 0 };
  /** Starts made before the last 429 cut of the window. */
  private lastCutAfterStart: number | null = null;

  private readonly policy: DispatchPolicy;
  private readonly buffer: PageItem[];
  private readonly inFlight: InFlightCall[] = [];
  private readonly startLog: StartLogEntry[] = [];
  /** Independent tallies, so a ledger that miscounts cannot hide. */
  private approved: number;
  private spent = 0;
  private step = 0;

  constructor(
    readonly scenario: SimScenario,
    options: { policy?: DispatchPolicy; createState?: StateFactory } = {},
  ) {
    this.policy = options.policy ?? decideDispatch;
    const stateOptions: StateOptions = {
      maxConcurrency: scenario.maxConcurrency,
      startedAt: new Date(SIM_EPOCH).toISOString(),
      now: () => this.clock,
    };
    this.state = options.createState ? options.createState(stateOptions) : new BatchState(stateOptions);
    this.buffer = scenario.items.map((item, index) => toPageItem(item, index));
    this.records = scenario.items.map(() => ({ starts: [], settles: 0, requeues: 0 }));
    const n = scenario.items.length;
    this.state.setEstimate({
      totalRequests: n,
      totalInputTokens: sum(scenario.items.map((i) => i.inputTokens)),
      totalOutputTokens: sum(scenario.items.map((i) => i.maxTokens)),
      inputCost: 0,
      outputCost: 0,
      totalCost: sum(scenario.items.map((i) => i.cost)),
      currency: 'BRL',
      model: 'sabiazinho-4',
      maxCost: sum(scenario.items.map((i) => i.maxCost)),
    });
    this.state.openPage(0, n);
    this.approved = scenario.initialBudget;
    this.state.approve(scenario.initialBudget, 'signal', 'simulator');
    this.check();
  }

  /** Violations of one property. */
  violationsOf(property: SimProperty): Violation[] {
    return this.violations.filter((v) => v.property === property);
  }

  /** Applies each event in turn, checking the invariants after each. */
  run(events: readonly SimEvent[]): this {
    for (const event of events) this.apply(event);
    return this;
  }

  /** Applies one event and checks the invariants. */
  apply(event: SimEvent): void {
    this.step += 1;
    switch (event.kind) {
      case 'tryStart':
        this.tryStart();
        break;
      case 'succeed': {
        const call = this.pick(event.pick);
        if (call) this.succeed(call, event.costFraction, event.usageFraction);
        break;
      }
      case 'rateLimited': {
        const call = this.pick(event.pick);
        if (call) this.rateLimited(call, event.retryAfterMs);
        break;
      }
      case 'fail': {
        const call = this.pick(event.pick);
        if (call) this.fail(call);
        break;
      }
      case 'lost': {
        const call = this.pick(event.pick);
        if (call) this.lost(call);
        break;
      }
      case 'offSchema': {
        const call = this.pick(event.pick);
        if (call) this.offSchema(call, event.costFraction);
        break;
      }
      case 'apiFailure': {
        const call = this.pick(event.pick);
        if (call) this.apiFailure(call, event.billed);
        break;
      }
      case 'credentialsRefused': {
        const call = this.pick(event.pick);
        if (call)
          this.judged(call, {
            error: { type: FailureTypes.AuthenticationError, message: 'Invalid API key', status: 401 },
            attempts: 1,
            retryable: false,
          });
        break;
      }
      case 'lease':
        this.leased.requests += event.requests;
        this.leased.inputTokens += event.inputTokens;
        this.leased.outputTokens += event.outputTokens;
        break;
      case 'approve':
        this.approved += event.extra;
        this.state.approve(this.approved, 'signal', 'simulator');
        break;
      case 'pause':
        this.state.setPaused(true);
        break;
      case 'resume':
        this.state.resume();
        break;
      case 'resize':
        this.state.setConcurrency(event.concurrency);
        break;
      case 'advance':
        this.clock += event.ms;
        break;
    }
    this.check();
  }

  /**
   * Finishes the batch as a person and a well-behaved Maritaca would: resumes, answers every
   * call at its worst case, waits out every hold and approves more whenever the batch asks.
   * Returns whether every request was settled within a bound on the steps (a violation if not).
   */
  drain(): boolean {
    const bound = 20 * this.scenario.items.length + 200;
    for (let i = 0; i < bound; i++) {
      const head = this.head();
      const retryAt = this.state.nextRetryAt(this.clock);
      if (head === undefined && this.inFlight.length === 0 && retryAt === null) return true;
      this.step += 1;
      if (this.state.view.paused || this.state.view.credentialsError) {
        this.state.resume();
      } else if (head === undefined) {
        if (this.inFlight.length > 0) this.succeed(this.inFlight[0]!, 1, 1);
        else this.clock = retryAt!;
      } else {
        const decision = this.tryStart();
        if (decision && !decision.start) {
          switch (decision.reason) {
            case 'paused':
            case 'awaiting_credentials':
              this.state.resume();
              break;
            case 'key_lease':
              this.leased.requests += 1;
              this.leased.inputTokens += candidateOf(this).inputTokens;
              this.leased.outputTokens += candidateOf(this).outputTokens;
              break;
            case 'api_unavailable':
              // Maritaca is back: the probe (or a call still in flight) answers; else wait for the probe.
              if (this.inFlight.length > 0) this.succeed(this.inFlight[0]!, 1, 1);
              else this.clock = Math.max(this.clock + 1, decision.until ?? this.clock + 1_000);
              break;
            case 'window_full':
            case 'api_failing':
            case 'budget':
              if (this.inFlight.length > 0) this.succeed(this.inFlight[0]!, 1, 1);
              else this.approveMore();
              break;
            case 'retry_after':
            case 'rate_limit':
              this.clock = Math.max(this.clock + 1, decision.until ?? this.clock + 1_000);
              break;
            case 'awaiting_budget':
              this.approveMore();
              break;
          }
        }
      }
      this.check();
    }
    this.violation('settlement', `the drain did not finish within ${bound} steps`);
    return false;
  }

  /** Requests never started, in order (for what the next start would need). */
  pendingBuffer(): readonly PageItem[] {
    return this.buffer;
  }

  /** The request that would start next: a retry whose wait is over first, else the buffer's head (as `PageQueue.peek`). */
  private head(): PageItem | undefined {
    return this.state.nextRequest(this.buffer, this.clock);
  }

  private pick(pick: number): InFlightCall | undefined {
    if (this.inFlight.length === 0) return undefined;
    return this.inFlight[pick % this.inFlight.length];
  }

  private approveMore(): void {
    this.extraApprovals += 1;
    this.approved += sum(this.scenario.items.map((i) => i.maxCost)) + 1;
    this.state.approve(this.approved, 'signal', 'simulator');
  }

  /** Asks the policy about the queue's head and starts it if allowed, as `Dispatcher.step` does. */
  private tryStart(): DispatchDecision | null {
    const next = this.head();
    if (next === undefined) return null;
    const view = {
      ...this.state.dispatchView(this.scenario.rateLimit),
      ...(this.scenario.keyLeases ? { keyLease: { ...this.leased } } : {}),
    };
    const candidate = this.state.reservationOf(next);
    const decision = this.policy(view, candidate, this.clock);
    this.decisions.push(decision);
    if (!decision.start) {
      if (decision.reason === 'awaiting_budget') {
        this.awaitingBudgetInFlight.push(this.state.view.inFlight);
        if (this.state.view.inFlight > 0 || this.inFlight.length > 0) {
          this.violation(
            'awaitingBudget',
            `awaiting_budget with ${this.inFlight.length} call(s) in flight (state says ${this.state.view.inFlight})`,
          );
        }
      }
      return decision;
    }
    const allowed = allowedInFlight(this.state.view.window, this.state.view.maxConcurrency);
    if (this.inFlight.length >= allowed) {
      this.violation(
        'window',
        `start with ${this.inFlight.length} in flight already, window allows ${allowed} (max ${this.state.view.maxConcurrency})`,
      );
    }
    if (this.state.view.credentialsError) {
      this.violation('credentials', `request ${next.index} started while awaiting credentials`);
    }
    if (this.state.view.outage) {
      if (!decision.probe)
        this.violation('probe', `request ${next.index} started during an outage, not as a probe`);
      if (this.inFlight.some((c) => c.probe))
        this.violation('probe', `a second probe (request ${next.index}) while one is in flight`);
    }
    if (this.scenario.keyLeases) {
      if (
        this.leased.requests < 1 ||
        this.leased.inputTokens < candidate.inputTokens ||
        this.leased.outputTokens < candidate.outputTokens
      ) {
        this.violation(
          'lease',
          `request ${next.index} started beyond the lease (${JSON.stringify(this.leased)} left, needs ${candidate.inputTokens} in, ${candidate.outputTokens} out)`,
        );
      }
      this.leased.requests -= 1;
      this.leased.inputTokens -= candidate.inputTokens;
      this.leased.outputTokens -= candidate.outputTokens;
    }
    const probe = decision.probe === true;
    this.state.takeNext(this.buffer, next);
    this.state.startCall(next, this.scenario.rateLimit !== undefined, candidate, false, probe);
    const record = this.records[next.index]!;
    if (this.inFlight.some((c) => c.item.index === next.index)) {
      this.violation('settlement', `request ${next.index} started while already in flight`);
    }
    if (record.starts.length > record.requeues || record.settles > 0) {
      this.violation(
        'settlement',
        `request ${next.index} started again without being sent back (starts ${record.starts.length + 1}, requeues ${record.requeues}, settles ${record.settles})`,
      );
    }
    record.starts.push(this.clock);
    this.startLog.push({
      index: next.index,
      at: this.clock,
      inputTokens: candidate.inputTokens,
      outputTokens: candidate.outputTokens,
    });
    this.inFlight.push({
      item: next,
      reserved: candidate.maxCost,
      start: this.startLog.length - 1,
      probe,
      seq: this.startLog.length,
    });
    this.checkRateAtStart();
    return decision;
  }

  /**
   * The call answers. A request counted exactly is billed its content plus the template's real
   * overhead and up to `max_tokens` of answer; any other costs at most its reservation.
   */
  private succeed(call: InFlightCall, costFraction: number, usageFraction: number): void {
    const { item } = call;
    const real = this.scenario.templateOverhead;
    let cost: number;
    let usage: { promptTokens: number; completionTokens: number };
    if (item.contentTokens !== undefined && item.price && real) {
      usage = {
        promptTokens: item.contentTokens + real.perRequest + real.perMessage * item.call.messages.length,
        completionTokens: Math.floor(usageFraction * item.call.maxTokens),
      };
      // Integer prices per million: whole micro-BRL, so sums compare within COST_EPSILON.
      cost = (usage.promptTokens * item.price.input + usage.completionTokens * item.price.output) / 1e6;
    } else {
      cost = Math.floor(costFraction * Math.round(call.reserved * 1e6)) / 1e6;
      usage = {
        promptTokens: Math.floor(usageFraction * item.inputTokens),
        completionTokens: Math.floor(usageFraction * item.call.maxTokens),
      };
    }
    // The guarantee rests on this: no call is billed more than it held.
    if (cost > call.reserved + COST_EPSILON) {
      this.violation('budget', `request ${item.index} cost ${cost} > reserved ${call.reserved}`);
    }
    this.state.callSucceeded(item, { cost, usage });
    this.spent += cost;
    const logged = this.startLog[call.start]!;
    logged.inputTokens = usage.promptTokens;
    logged.outputTokens = usage.completionTokens;
    this.settled(call);
    this.state.callEnded(item.index);
  }

  /** Maritaca answers 429: back to the queue while attempts remain, else the request fails. */
  private rateLimited(call: InFlightCall, retryAfterMs: number): void {
    const { item } = call;
    if (this.scenario.apiHealth) {
      const before = this.state.view.window;
      this.judged(call, {
        error: { type: FailureTypes.RateLimited, message: '429', status: 429 },
        attempts: 1,
        retryable: true,
        retryAfterMs,
      });
      if (this.state.view.window < before) {
        if (this.lastCutAfterStart !== null && call.seq <= this.lastCutAfterStart) {
          this.violation(
            'cutOnce',
            `a 429 to start #${call.seq} cut the window again after the cut that followed start #${this.lastCutAfterStart}`,
          );
        }
        this.lastCutAfterStart = this.startLog.length;
      }
      return;
    }
    const attemptsSoFar = 1 + this.state.priorAttemptsOf(item.index);
    const requeued = this.state.callRateLimited(
      item,
      retryAfterMs,
      attemptsSoFar,
      this.scenario.maximumAttempts,
    );
    this.ended(call, requeued);
  }

  /** Nobody knows whether the call was billed: its worst case is spent; it is retried while attempts remain. */
  private lost(call: InFlightCall): void {
    const { item } = call;
    this.state.callOutcomeUnknown(item.index);
    this.spent += call.reserved;
    const attemptsSoFar = 1 + this.state.priorAttemptsOf(item.index);
    const retrying = attemptsSoFar < this.scenario.maximumAttempts;
    if (retrying) this.state.callRetrying(item, attemptsSoFar, this.clock + 1_000);
    this.ended(call, retrying);
  }

  /** The answer is billed but does not match its schema: asked again while re-asks remain, else failed. */
  private offSchema(call: InFlightCall, costFraction: number): void {
    const { item } = call;
    const cost = Math.floor(costFraction * Math.round(call.reserved * 1e6)) / 1e6;
    this.spent += cost;
    this.ended(call, this.state.callAnsweredOff(item, cost, 2));
  }

  /** Maritaca fails the call itself: judged by the rules (an outage holds, a failure of its own is retried). */
  private apiFailure(call: InFlightCall, billed: boolean): void {
    const failure: JudgedFailure = {
      error: billed
        ? { type: FailureTypes.Timeout, message: 'timed out' }
        : { type: FailureTypes.ServerError, message: 'HTTP 503', status: 503 },
      attempts: 1,
      retryable: true,
      ...(billed ? { billing: 'unknown' as const } : {}),
    };
    if (billed) this.spent += call.reserved;
    const outageBefore = this.state.view.outage !== null;
    const failedForGood = this.judged(call, failure);
    if (!outageBefore && this.state.view.outage !== null) this.outagesSeen += 1;
    if (failedForGood && (outageBefore || this.state.view.outage !== null)) {
      this.violation(
        'outage',
        `request ${call.item.index} failed for good on Maritaca's failure during an outage`,
      );
    }
  }

  /**
   * A failure judged by the batch's rules, as the workflow judges it (the scenario's `apiHealth`,
   * or the earlier judgement without it). Returns whether the request failed for good.
   */
  private judged(call: InFlightCall, failure: JudgedFailure): boolean {
    const rules: FailureRules = {
      maximumAttempts: this.scenario.maximumAttempts,
      workflowRetries: true,
      maxReasks: 2,
      retryDelayMs: () => 1_000,
      defaultRateLimitHoldMs: 1_000,
      ...(this.scenario.apiHealth ? { apiHealth: this.scenario.apiHealth } : {}),
    };
    const failed = this.state.callFailedWith(call.item, failure, rules);
    if (failed) {
      this.settled(call);
    } else {
      this.records[call.item.index]!.requeues += 1;
      this.leave(call);
    }
    this.state.callEnded(call.item.index);
    return failed !== null;
  }

  /** A call is over: sent back to the queue, or failed for good; either way it leaves the window. */
  private ended(call: InFlightCall, requeued: boolean): void {
    const { item } = call;
    if (requeued) {
      this.records[item.index]!.requeues += 1;
      this.leave(call);
    } else {
      this.state.callFailed(item.index);
      this.settled(call);
    }
    this.state.callEnded(item.index);
  }

  /** The call fails for good. */
  private fail(call: InFlightCall): void {
    this.state.callFailed(call.item.index);
    this.settled(call);
    this.state.callEnded(call.item.index);
  }

  private settled(call: InFlightCall): void {
    const record = this.records[call.item.index]!;
    record.settles += 1;
    if (record.settles > 1)
      this.violation('settlement', `request ${call.item.index} settled ${record.settles} times`);
    this.state.settle(call.item.index);
    this.leave(call);
  }

  private leave(call: InFlightCall): void {
    this.inFlight.splice(this.inFlight.indexOf(call), 1);
  }

  /** Records a violation (each message once, at most MAX_VIOLATIONS per property). */
  private violation(property: SimProperty, message: string): void {
    const same = this.violations.filter((v) => v.property === property);
    if (same.length >= MAX_VIOLATIONS || same.some((v) => v.message === message)) return;
    this.violations.push({ property, step: this.step, message });
  }

  /** Checks every invariant that must hold between events. */
  check(): void {
    this.checkBudget();
    this.checkWindow();
    this.checkSettlement();
  }

  /** Spent plus reserved never passes the approved budget, by the ledger and by the simulator's own tally. */
  checkBudget(): void {
    const { ledger } = this.state;
    const limit = this.approved + COST_EPSILON;
    if (ledger.spent + ledger.reserved > limit) {
      this.violation(
        'budget',
        `ledger: spent ${ledger.spent} + reserved ${ledger.reserved} > approved ${this.approved}`,
      );
    }
    const reserved = sum(this.inFlight.map((c) => c.reserved));
    if (this.spent + reserved > limit) {
      this.violation(
        'budget',
        `tally: spent ${this.spent} + in flight ${reserved} > approved ${this.approved}`,
      );
    }
    if (
      Math.abs(ledger.spent - this.spent) > COST_EPSILON ||
      Math.abs(ledger.reserved - reserved) > COST_EPSILON
    ) {
      this.violation(
        'budget',
        `ledger (spent ${ledger.spent}, reserved ${ledger.reserved}) disagrees with the tally (${this.spent}, ${reserved})`,
      );
    }
  }

  /** The AIMD window stays within [1, maxConcurrency], and so does the effective window. */
  checkWindow(): void {
    const { window, maxConcurrency } = this.state.view;
    if (!(window >= 1 && window <= maxConcurrency)) {
      this.violation('window', `window ${window} outside [1, ${maxConcurrency}]`);
    }
    const allowed = allowedInFlight(window, maxConcurrency);
    if (!(Number.isInteger(allowed) && allowed >= 1 && allowed <= maxConcurrency)) {
      this.violation('window', `allowedInFlight ${allowed} outside [1, ${maxConcurrency}]`);
    }
  }

  /**
   * Per request: starts = settles + requeues + (1 if in flight), settled at most once, and the
   * state's counters and retry queue agree with what happened.
   */
  checkSettlement(): void {
    const queued = new Map<number, number>();
    for (const item of this.state.view.retryQueue) queued.set(item.index, (queued.get(item.index) ?? 0) + 1);
    let settled = 0;
    this.records.forEach((record, index) => {
      const flying = this.inFlight.filter((c) => c.item.index === index).length;
      if (record.starts.length !== record.settles + record.requeues + flying) {
        this.violation(
          'settlement',
          `request ${index}: ${record.starts.length} starts, ${record.settles} settles, ${record.requeues} requeues, ${flying} in flight`,
        );
      }
      const waiting = record.settles === 0 && flying === 0 && record.requeues > 0 ? 1 : 0;
      if ((queued.get(index) ?? 0) !== waiting) {
        this.violation(
          'settlement',
          `request ${index} is ${queued.get(index) ?? 0} time(s) in the retry queue, expected ${waiting}`,
        );
      }
      settled += Math.min(record.settles, 1);
    });
    const view = this.state.view;
    if (view.inFlight !== this.inFlight.length) {
      this.violation('settlement', `state counts ${view.inFlight} in flight, ${this.inFlight.length} are`);
    }
    if (view.succeeded + view.failed !== settled) {
      this.violation('settlement', `state counts ${view.succeeded + view.failed} settled, ${settled} are`);
    }
  }

  /** After the drain: every request settled exactly once, nothing held, the page closed. */
  checkFinished(): void {
    this.records.forEach((record, index) => {
      if (record.settles !== 1)
        this.violation('settlement', `request ${index} settled ${record.settles} times at the end`);
    });
    const view = this.state.view;
    if (view.retryQueue.length > 0 || this.buffer.length > 0) {
      this.violation(
        'settlement',
        `work left at the end: ${view.retryQueue.length} retries, ${this.buffer.length} never started`,
      );
    }
    if (this.state.ledger.reserved !== 0)
      this.violation('settlement', `${this.state.ledger.reserved} still reserved at the end`);
    if (view.openPages.length > 0)
      this.violation('settlement', `page still open at the end: ${JSON.stringify(view.openPages)}`);
  }

  /**
   * At each start, the starts that count in the minute ending now (each counts for
   * RATE_WINDOW_MS + RATE_WINDOW_MARGIN_MS) stay within the declared limits. Tokens count as
   * reserved until a call reports its usage (never more than reserved). A call larger than a
   * limit on its own may start only when nothing else counts.
   */
  private checkRateAtStart(): void {
    const limits = this.scenario.rateLimit;
    if (!limits) return;
    const horizon = this.clock - RATE_WINDOW_MS - RATE_WINDOW_MARGIN_MS;
    const live = this.startLog.filter((e) => e.at > horizon);
    if (limits.rpm !== undefined && live.length > limits.rpm) {
      this.violation(
        'rate',
        `${live.length} starts within a minute at ${this.clock - SIM_EPOCH} ms, rpm ${limits.rpm}`,
      );
    }
    if (live.length <= 1) return;
    const input = sum(live.map((e) => e.inputTokens));
    const output = sum(live.map((e) => e.outputTokens));
    if (limits.inputTpm !== undefined && input > limits.inputTpm) {
      this.violation('rate', `${input} input tokens within a minute, inputTpm ${limits.inputTpm}`);
    }
    if (limits.outputTpm !== undefined && output > limits.outputTpm) {
      this.violation('rate', `${output} output tokens within a minute, outputTpm ${limits.outputTpm}`);
    }
  }
}

/** What the batch's next start would reserve (the drain's lease covers exactly that). */
function candidateOf(sim: BatchSimulator): { inputTokens: number; outputTokens: number } {
  const next = sim.state.nextRequest(sim.pendingBuffer(), sim.clock);
  return next ? sim.state.reservationOf(next) : { inputTokens: 0, outputTokens: 0 };
}

/** Runs `events`, drains the batch and checks it finished: the simulator, for its violations. */
export function simulate(
  scenario: SimScenario,
  events: readonly SimEvent[],
  options: { policy?: DispatchPolicy; createState?: StateFactory } = {},
): BatchSimulator {
  const sim = new BatchSimulator(scenario, options);
  sim.run(events);
  if (sim.drain()) sim.checkFinished();
  return sim;
}

function toPageItem(item: SimItem, index: number): PageItem {
  const messages = item.exact?.messages ?? 1;
  return {
    index,
    call: {
      requestId: String(index),
      model: 'sabiazinho-4',
      messages: Array.from({ length: messages }, () => ({
        role: 'user' as const,
        content: `request ${index}`,
      })),
      maxTokens: item.maxTokens,
    },
    inputTokens: item.inputTokens,
    cost: item.cost,
    maxCost: item.maxCost,
    ...(item.exact ? { contentTokens: item.exact.contentTokens, price: item.exact.price } : {}),
  };
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/** Money in whole micro-BRL, so sums stay exact enough to compare within COST_EPSILON. */
const money = (maxMicros: number) => fc.integer({ min: 0, max: maxMicros }).map((m) => m / 1e6);
const fraction = fc.double({ min: 0, max: 1, noNaN: true });

/** A request: tokens and a worst-case cost, its estimate below it. */
export const simItemArb: fc.Arbitrary<SimItem> = fc
  .record({
    inputTokens: fc.integer({ min: 1, max: 4_000 }),
    maxTokens: fc.integer({ min: 1, max: 2_000 }),
    maxCostMicros: fc.integer({ min: 1, max: 50_000 }),
    estimateShare: fraction,
  })
  .map(({ inputTokens, maxTokens, maxCostMicros, estimateShare }) => ({
    inputTokens,
    maxTokens,
    maxCost: maxCostMicros / 1e6,
    cost: Math.floor(maxCostMicros * estimateShare) / 1e6,
  }));

/** Per-minute limits: always an rpm, token limits sometimes (at times below a single request). */
export const rateLimitArb: fc.Arbitrary<RateLimits> = fc
  .record({
    rpm: fc.integer({ min: 1, max: 6 }),
    inputTpm: fc.option(fc.integer({ min: 500, max: 16_000 }), { nil: undefined }),
    outputTpm: fc.option(fc.integer({ min: 200, max: 6_000 }), { nil: undefined }),
  })
  .map(({ rpm, inputTpm, outputTpm }) => ({
    rpm,
    ...(inputTpm !== undefined ? { inputTpm } : {}),
    ...(outputTpm !== undefined ? { outputTpm } : {}),
  }));

/** A batch: `rateLimit` decides whether per-minute limits are always, never or sometimes declared. */
export function scenarioArb(
  rateLimit: 'always' | 'never' | 'sometimes' = 'sometimes',
): fc.Arbitrary<SimScenario> {
  const limits =
    rateLimit === 'always'
      ? rateLimitArb
      : rateLimit === 'never'
        ? fc.constant(undefined)
        : fc.option(rateLimitArb, { nil: undefined });
  return fc
    .record({
      items: fc.array(simItemArb, { minLength: 1, maxLength: 20 }),
      maxConcurrency: fc.integer({ min: 1, max: 6 }),
      initialBudget: money(200_000),
      maximumAttempts: fc.integer({ min: 1, max: 4 }),
      rateLimit: limits,
    })
    .map(({ rateLimit: declared, ...rest }) => (declared ? { ...rest, rateLimit: declared } : rest));
}

/** One event, weighted towards starts and answers so batches make progress. */
export const simEventArb: fc.Arbitrary<SimEvent> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ kind: 'tryStart' as const }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('succeed' as const),
      pick: fc.nat(20),
      costFraction: fraction,
      usageFraction: fraction,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('rateLimited' as const),
      pick: fc.nat(20),
      retryAfterMs: fc.integer({ min: 0, max: 30_000 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('fail' as const), pick: fc.nat(20) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('lost' as const), pick: fc.nat(20) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('offSchema' as const),
      pick: fc.nat(20),
      costFraction: fraction,
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('approve' as const), extra: money(100_000) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'pause' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'resume' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('resize' as const),
      concurrency: fc.integer({ min: 1, max: 8 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('advance' as const),
      ms: fc.oneof(fc.integer({ min: 0, max: 5_000 }), fc.integer({ min: 0, max: 70_000 })),
    }),
  },
);

/** A sequence of events. */
export const simEventsArb: fc.Arbitrary<SimEvent[]> = fc.array(simEventArb, { maxLength: 80 });

/** Template overheads a real Maritaca might have, up to the figure estimates assume before learning. */
export const templateOverheadArb: fc.Arbitrary<TemplateOverhead> = fc.record({
  perRequest: fc.integer({ min: 0, max: DEFAULT_TEMPLATE_OVERHEAD.perRequest }),
  perMessage: fc.integer({ min: 0, max: DEFAULT_TEMPLATE_OVERHEAD.perMessage }),
});

/**
 * A request counted exactly, priced as the page loader prices it: content plus the default
 * template figure, answers at `max_tokens`; its estimate is its worst case.
 */
export const exactItemArb: fc.Arbitrary<SimItem> = fc
  .record({
    contentTokens: fc.integer({ min: 1, max: 4_000 }),
    messages: fc.integer({ min: 1, max: 3 }),
    maxTokens: fc.integer({ min: 1, max: 2_000 }),
    price: fc.constantFrom({ input: 1, output: 4 }, { input: 5, output: 20 }, { input: 5, output: 40 }),
  })
  .map(({ contentTokens, messages, maxTokens, price }) => {
    const inputTokens = contentTokens + templateTokens(DEFAULT_TEMPLATE_OVERHEAD, messages);
    const cost = (inputTokens * price.input + maxTokens * price.output) / 1e6;
    return { inputTokens, maxTokens, cost, maxCost: cost, exact: { contentTokens, messages, price } };
  });

/**
 * A batch of exactly counted requests under a random real template overhead. With
 * `budget: 'estimate'` the first approval is the estimate itself (what `approve` defaults to).
 */
export function exactScenarioArb(budget: 'estimate' | 'random'): fc.Arbitrary<SimScenario> {
  return fc
    .record({
      items: fc.array(exactItemArb, { minLength: 1, maxLength: 20 }),
      maxConcurrency: fc.integer({ min: 1, max: 6 }),
      randomBudget: money(200_000),
      maximumAttempts: fc.integer({ min: 1, max: 4 }),
      rateLimit: fc.option(rateLimitArb, { nil: undefined }),
      templateOverhead: templateOverheadArb,
    })
    .map(({ items, randomBudget, rateLimit, ...rest }) => ({
      ...rest,
      items,
      initialBudget:
        budget === 'estimate' ? Math.round(sum(items.map((i) => i.cost)) * 1e6) / 1e6 : randomBudget,
      ...(rateLimit ? { rateLimit } : {}),
    }));
}

/** Events of a batch billed once per request as Maritaca reports it: no lost calls, no re-asks, no extra approvals. */
export const billedEventsArb: fc.Arbitrary<SimEvent[]> = fc.array(
  // Lost calls and re-asks are billed beyond the estimate: the estimate cannot cover them.
  simEventArb.filter((e) => e.kind !== 'lost' && e.kind !== 'offSchema' && e.kind !== 'approve'),
  { maxLength: 80 },
);

/** Outage handling as a batch of this version has it, with probe intervals short enough to see several. */
export const apiHealthArb: fc.Arbitrary<NonNullable<FailureRules['apiHealth']>> = fc.record({
  failuresToTrip: fc.integer({ min: 1, max: 3 }),
  probeIntervalMs: fc.integer({ min: 500, max: 10_000 }),
  probeMaxIntervalMs: fc.integer({ min: 10_000, max: 60_000 }),
  outageTimeoutMs: fc.constant(24 * 60 * 60 * 1000),
});

/** A batch that judges failures batch-wide: trips after at most `maximumAttempts` failures, as the workflow does. */
export const healthScenarioArb: fc.Arbitrary<SimScenario> = fc
  .tuple(scenarioArb('sometimes'), apiHealthArb)
  .map(([scenario, health]) => ({
    ...scenario,
    // Room for every request twice over and at least two calls at once, so outages and 429s
    // meet calls in flight rather than a batch waiting for budget.
    initialBudget: Math.round(2 * sum(scenario.items.map((i) => i.maxCost)) * 1e6) / 1e6,
    maxConcurrency: Math.max(2, scenario.maxConcurrency),
    apiHealth: { ...health, failuresToTrip: Math.min(health.failuresToTrip, scenario.maximumAttempts) },
  }));

/** Events with Maritaca failing often (outages form from runs of failures), refusing keys and answering 429s. */
export const healthEventsArb: fc.Arbitrary<SimEvent[]> = fc.array(
  fc.oneof(
    { weight: 8, arbitrary: simEventArb },
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('apiFailure' as const),
        pick: fc.nat(20),
        billed: fc.boolean(),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant('credentialsRefused' as const), pick: fc.nat(20) }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('rateLimited' as const),
        pick: fc.nat(20),
        retryAfterMs: fc.integer({ min: 0, max: 2_000 }),
      }),
    },
  ),
  { maxLength: 100 },
);

/** A batch on a key whose limits are shared, with outages judged batch-wide too. */
export const leasedScenarioArb: fc.Arbitrary<SimScenario> = healthScenarioArb.map((scenario) => ({
  ...scenario,
  keyLeases: true,
}));

/** Events with the key's limiter granting capacity now and then (sometimes less than a start needs). */
export const leasedEventsArb: fc.Arbitrary<SimEvent[]> = fc.array(
  fc.oneof(
    { weight: 10, arbitrary: simEventArb },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('apiFailure' as const),
        pick: fc.nat(20),
        billed: fc.boolean(),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('lease' as const),
        requests: fc.integer({ min: 0, max: 4 }),
        inputTokens: fc.integer({ min: 0, max: 12_000 }),
        outputTokens: fc.integer({ min: 0, max: 6_000 }),
      }),
    },
  ),
  { maxLength: 100 },
);
