import { BudgetLedger } from './budget-ledger';
import { FailureTypes, failureClassOf } from './failures';
import { allowedInFlight, type DispatchView } from './dispatch-policy';
import { adaptWindow, type RateLimits, type WindowEntry } from './rate-window';
import {
  learnedTemplateOverheads,
  overheadKey,
  overheadShape,
  type LearnedOverheads,
  type TemplateOverhead,
} from './template-overhead';
import type {
  ApprovalRecord,
  BatchEstimate,
  BatchProgress,
  BatchStatus,
  CallMaritacaOutput,
  PageItem,
  ResultsRef,
  WaitingFor,
} from './types';

/** A page of requests whose outcomes are not all settled yet (compacted in the store once they are). */
export interface OpenPage {
  start: number;
  end: number;
  settled: number;
}

/** Where the overhead learned from requests like `item` is kept. */
function overheadKeyOf(item: PageItem): string {
  return overheadKey(item.call.model, item.call.messages.length, overheadShape(item.call));
}

/** An outage being waited out: since when, the next probe, and how the probing has gone. */
export interface OutageState {
  /** Workflow time (ms) the outage was declared. */
  since: number;
  /** Calls started before it was declared (only an answer to a later call, a probe, ends it). */
  afterStart?: number;
  /** Workflow time (ms) the next probe may start. */
  nextProbeAt: number;
  /** The wait before the next probe; doubles after each failed probe, up to the maximum. */
  probeIntervalMs: number;
  /** Probes that failed so far. */
  probes: number;
  /** The last failure's message. */
  lastError: string;
}

/** How a batch judges failed calls: its retry policy and, when on, its outage and credential handling. */
export interface FailureRules {
  maximumAttempts: number;
  /** Each call is one attempt and the workflow schedules retries (else Temporal's retries were inside a call). */
  workflowRetries: boolean;
  /** Re-asks allowed for an answer off its JSON schema. */
  maxReasks: number;
  /** Wait before the Nth retry of a request (N from 1). */
  retryDelayMs: (retry: number) => number;
  /** Hold after a 429 without `Retry-After`. */
  defaultRateLimitHoldMs: number;
  /**
   * Outages, refused keys and 429s are batch-wide events (a circuit breaker, a pause for
   * credentials, one window cut per round trip); off in runs that began before they existed.
   */
  apiHealth?: {
    /** Failures of Maritaca in a row that declare an outage. */
    failuresToTrip: number;
    probeIntervalMs: number;
    probeMaxIntervalMs: number;
    outageTimeoutMs: number;
  };
}

/** A failed call, as the rules judge it. */
export interface JudgedFailure {
  error: { type: string; message: string; status?: number };
  /** Attempts the failure reports (when Temporal retried inside the call). */
  attempts: number;
  retryable: boolean;
  billing?: 'unknown';
  billedCost?: number;
  retryAfterMs?: number;
  /**
   * Says nothing about Maritaca's health (a call of a lost run that had already failed on its
   * own): retried as any failure, but no part of a streak.
   */
  healthNeutral?: boolean;
}

/** Weight of the newest answer in the batch's average latency. */
const LATENCY_WEIGHT = 0.2;

/** A request waiting to be tried again, not before `notBefore` (workflow time, ms) when set. */
export type QueuedRetry = PageItem & { notBefore?: number };

/** What a request would hold if it started now: the tokens it may use and its worst-case cost. */
export interface Reservation {
  inputTokens: number;
  outputTokens: number;
  maxCost: number;
}

/**
 * What crosses continue-as-new, each with the value a first run starts from. Adding a field to
 * the carried state is one line here: restoring and producing it follow.
 */
function carriedDefaults(maxConcurrency: number) {
  return {
    run: 0,
    startedAt: '',
    runningSince: null as number | null,
    estimate: null as BatchEstimate | null,
    approvals: [] as ApprovalRecord[],
    /** Index of the first request never started. */
    nextIndex: 0,
    /** Where the page holding `nextIndex` starts: its first index and (for a source) its byte offset. */
    pageStartIndex: 0,
    byteOffset: 0,
    succeeded: 0,
    failed: 0,
    actualCost: 0,
    unconfirmedCost: 0,
    /** Template overhead seen in answers, by model and message count. */
    templateOverheads: {} as LearnedOverheads,
    dispatchedCost: 0,
    dispatchedMaxCost: 0,
    maxConcurrency,
    window: maxConcurrency,
    paused: false,
    holdUntil: 0,
    rateLimitedResponses: 0,
    /** Times a 429 cut the concurrency window. */
    windowCuts: 0,
    rateWindow: [] as WindowEntry[],
    /** Requests sent back to be tried again (a 429, or a failure while attempts remain), before the ones never started. */
    retryQueue: [] as QueuedRetry[],
    /** Attempts spent in earlier executions of a request (each 429 ends one). */
    priorAttempts: {} as Record<string, number>,
    /** Heartbeats Maritaca calls reported sending (Temporal actions the history does not show). */
    heartbeats: 0,
    /** Calls a request made that did not count against its attempts (during an outage, a refused key). */
    uncountedCalls: {} as Record<string, number>,
    /** Times a request's answer did not match its requested JSON and it was asked again. */
    reasks: {} as Record<string, number>,
    /** Average time Maritaca took to answer (ms, moving average); null before any answer. */
    callLatencyMs: null as number | null,
    /** Requests whose calls failed on Maritaca's side one after another, most recent last. */
    apiFailureStreak: [] as number[],
    /** Start sequence of the first call of the streak: answers to calls started before it are old news. */
    streakSinceStart: 0,
    /** The outage being waited out, if any. */
    outage: null as OutageState | null,
    /** An outage outlasted `apiOutageTimeout`: failures count against requests until an answer comes. */
    outageGaveUp: false,
    /** What Maritaca said when it refused the key or account; nothing starts until `resume`. */
    credentialsError: null as { status?: number; message: string } | null,
    /** Calls started so far, in all runs (a sequence number for each start). */
    callsStarted: 0,
    /** The last 429 cut of the window: the calls started before it, and the window before it (what recovery returns to). */
    windowCut: null as { afterStart: number; target: number } | null,
    results: null as ResultsRef | null,
    openPages: [] as OpenPage[],
  };
}

/** What a batch carries into its next run when it continues as new. */
export type CarriedState = ReturnType<typeof carriedDefaults>;

/** State that lives within one run only. */
function transientDefaults() {
  return {
    status: 'estimating' as BatchStatus,
    waitingFor: null as WaitingFor,
    inFlight: 0,
    /** Activities calling Maritaca now: each holds one slot of the window, however many calls it carries. */
    runsInFlight: 0,
    /** The sequence number of each call in flight, by request index. */
    callStartSeq: {} as Record<string, number>,
    /** The request whose call is probing an outage, if one is in flight. */
    probeIndex: null as number | null,
    reservations: {} as Record<string, number>,
    reserved: 0,
    estimatedCost: 0,
    estimatedMaxCost: 0,
    /** An `approve` signal that arrived before the estimate was known. */
    earlyApproval: null as { budget?: number; approvedBy?: string } | null,
    rejected: false,
    rejectionReason: null as string | null,
    updatedAt: '',
    /** Bumped on every change, so a loop can wait for "anything happened". */
    version: 0,
  };
}

type StateData = CarriedState & ReturnType<typeof transientDefaults>;

/**
 * The one owner of a batch's state: counters, money (through its {@link BudgetLedger}), the
 * concurrency window, the rate window and the cursor. Every change goes through a method that
 * bumps `version` and tells `onChange`, so nothing that waits for a change can miss one, and the
 * continue-as-new state is produced and restored here alone. Plain JSON inside; no Temporal
 * import, so the same object runs in the workflow and in property tests.
 */
export class BatchState {
  private readonly d: StateData;
  /** The money: approvals, spend, reservations. */
  readonly ledger: BudgetLedger;

  constructor(
    options: { maxConcurrency: number; startedAt: string; now: () => number },
    carried?: Partial<CarriedState>,
  ) {
    this.d = { ...carriedDefaults(options.maxConcurrency), ...transientDefaults(), ...carried };
    this.d.startedAt ||= options.startedAt;
    this.d.updatedAt = this.d.startedAt;
    if (carried) this.d.status = 'running';
    if (this.d.estimate) {
      this.d.estimatedCost = this.d.estimate.totalCost;
      this.d.estimatedMaxCost = this.d.estimate.maxCost;
    }
    this.d.run += 1;
    this.now = options.now;
    this.ledger = new BudgetLedger(this.d);
  }

  private readonly now: () => number;
  private onChange: () => void = () => undefined;

  /** Who hears every change (the workflow's reporting: details and the progress webhook). */
  listen(onChange: () => void): void {
    this.onChange = onChange;
  }

  /** Read-only view of everything (for queries and the workflow's decisions). */
  get view(): Readonly<StateData> {
    return this.d;
  }

  private changed(): void {
    this.d.updatedAt = new Date(this.now()).toISOString();
    this.d.version += 1;
    this.onChange();
  }

  /** Something the state does not hold changed (a page arrived, a compaction ended): wake whoever waits. */
  bump(): void {
    this.changed();
  }

  /** Moves to a status (and what it waits for); says whether the status itself changed. */
  setStatus(
    status: BatchStatus,
    waitingFor: WaitingFor = null,
  ): { changed: boolean; statusChanged: boolean } {
    if (this.d.status === status && this.d.waitingFor === waitingFor)
      return { changed: false, statusChanged: false };
    const statusChanged = this.d.status !== status;
    this.d.status = status;
    this.d.waitingFor = waitingFor;
    this.changed();
    return { changed: true, statusChanged };
  }

  /** Sets the status without telling anyone: for the last word of a run that is failing. */
  markEnded(status: BatchStatus): void {
    this.d.status = status;
    this.d.waitingFor = null;
  }

  /** Records the estimate (the ledger measures the rest against it). */
  setEstimate(estimate: BatchEstimate): void {
    this.d.estimate = estimate;
    this.ledger.setEstimate(estimate.totalCost, estimate.maxCost);
    this.changed();
  }

  /** Adds an approval; its budget is in force from now on. */
  approve(budget: number, via: ApprovalRecord['via'], approvedBy?: string): ApprovalRecord {
    const record: ApprovalRecord = { budget, via, at: new Date(this.now()).toISOString() };
    if (approvedBy !== undefined) record.approvedBy = approvedBy;
    this.ledger.approve(record);
    this.changed();
    return record;
  }

  /** Keeps an approval that arrived before the estimate, for when it is known. */
  approveEarly(approval: { budget?: number; approvedBy?: string }): void {
    this.d.earlyApproval = approval;
    this.changed();
  }

  /** Rejects the batch (before it runs, or while it waits for budget). */
  reject(reason: string | null): void {
    this.d.rejected = true;
    this.d.rejectionReason = reason;
    this.changed();
  }

  /** Stops or restarts new calls. */
  setPaused(paused: boolean): void {
    this.d.paused = paused;
    this.changed();
  }

  /** Changes the concurrency cap, resetting the 429 back-off to it. */
  setConcurrency(concurrency: number): void {
    this.d.maxConcurrency = concurrency;
    this.d.window = concurrency;
    this.changed();
  }

  /** Notes that running began (kept across runs, for the requests-per-minute figure). */
  markRunning(): void {
    this.d.runningSince ??= this.now();
  }

  /** Where the results go, once known. */
  setResults(results: ResultsRef): void {
    this.d.results = results;
  }

  /** Calls that may be in flight now. */
  get allowedInFlight(): number {
    return allowedInFlight(this.d.window, this.d.maxConcurrency);
  }

  /** The snapshot the dispatch policy decides on. */
  dispatchView(rateLimit: RateLimits | undefined): DispatchView {
    return {
      paused: this.d.paused,
      inFlight: this.d.runsInFlight,
      window: this.d.window,
      maxConcurrency: this.d.maxConcurrency,
      holdUntil: this.d.holdUntil,
      ...(rateLimit ? { rateLimit } : {}),
      rateWindow: this.d.rateWindow,
      ledger: this.ledger,
      ...(this.d.credentialsError ? { credentialsRefused: true } : {}),
      // Two failures in a row, not one: a single random 5xx should cost nothing.
      ...(this.d.apiFailureStreak.length >= 2 ? { apiFailing: true } : {}),
      ...(this.d.outage
        ? { outage: { nextProbeAt: this.d.outage.nextProbeAt, probing: this.d.probeIndex !== null } }
        : {}),
    };
  }

  /**
   * The retry that may go next at `now` (the first whose wait is over), else the buffer's head;
   * undefined when neither has one.
   */
  nextRequest(buffer: readonly PageItem[], now: number): PageItem | undefined {
    return this.d.retryQueue.find((r) => (r.notBefore ?? 0) <= now) ?? buffer[0];
  }

  /** When the earliest retry still waiting may go, or null when none waits. */
  nextRetryAt(now: number): number | null {
    let earliest: number | null = null;
    for (const r of this.d.retryQueue) {
      const at = r.notBefore ?? 0;
      if (at > now && (earliest === null || at < earliest)) earliest = at;
    }
    return earliest;
  }

  /** Takes `item` (as {@link nextRequest} gave it) off its queue. */
  takeNext(buffer: PageItem[], item: PageItem): void {
    const at = this.d.retryQueue.indexOf(item);
    if (at !== -1) this.d.retryQueue.splice(at, 1);
    else {
      buffer.shift();
      this.d.nextIndex = item.index + 1;
    }
  }

  /**
   * What `item` holds if it starts now. Once the batch has seen the template overhead of a
   * request like it (same model and message count), its exact content count plus that overhead
   * prices it exactly; until then, the estimate's worst case.
   */
  reservationOf(item: PageItem): Reservation {
    const outputTokens = item.call.maxTokens;
    const learned =
      item.contentTokens !== undefined && item.price
        ? this.d.templateOverheads[overheadKeyOf(item)]
        : undefined;
    if (learned === undefined || item.contentTokens === undefined || !item.price) {
      return { inputTokens: item.inputTokens, outputTokens, maxCost: item.maxCost };
    }
    const inputTokens = item.contentTokens + learned;
    const exact = (inputTokens * item.price.input + outputTokens * item.price.output) / 1_000_000;
    // Rounded up: the reservation must never be below what the call can cost.
    // (Less a hair of floating-point noise, or 7820 micro-reais would reserve a nano-real more.)
    return { inputTokens, outputTokens, maxCost: Math.ceil(exact * 1e9 - 1e-6) / 1e9 };
  }

  /**
   * A call starts: it is in flight, its worst case is reserved and (with limits) it counts against
   * the minute. `reservation` is the one the dispatch policy approved (by default worked out here).
   * A call that `joinsRun` rides in an activity already holding a slot; any other takes a slot.
   */
  startCall(
    item: PageItem,
    countInRateWindow: boolean,
    reservation = this.reservationOf(item),
    joinsRun = false,
    probe = false,
  ): void {
    this.d.inFlight += 1;
    if (!joinsRun) this.d.runsInFlight += 1;
    if (probe) this.d.probeIndex = item.index;
    this.d.callsStarted += 1;
    this.d.callStartSeq[item.index] = this.d.callsStarted;
    this.ledger.reserve(item.index, item.cost, item.maxCost, reservation.maxCost);
    if (countInRateWindow) {
      this.d.rateWindow.push({
        index: item.index,
        at: this.now(),
        inputTokens: reservation.inputTokens,
        outputTokens: reservation.outputTokens,
      });
    }
    this.changed();
  }

  /**
   * A call answered: spend its real cost (its worst case when Maritaca sent no `usage`), learn
   * the template overhead from it, grow the window, and count what it really used against the minute.
   * It tells that Maritaca is up unless `healthEvidence` is false (a run whose next call then
   * failed on Maritaca's side: that failure is the newer news from its slot).
   */
  callSucceeded(
    item: PageItem,
    output: Pick<CallMaritacaOutput, 'cost' | 'usage' | 'usageMissing' | 'elapsedMs'>,
    healthEvidence = true,
  ): void {
    const { index } = item;
    const { usage } = output;
    delete this.d.priorAttempts[index];
    delete this.d.reasks[index];
    delete this.d.uncountedCalls[index];
    this.d.succeeded += 1;
    if (output.usageMissing) this.ledger.spendReservation(index);
    else {
      this.ledger.settle(index, output.cost);
      this.learnOverhead(item, usage.promptTokens);
    }
    if (healthEvidence) this.apiAnswered(index);
    const cut = this.d.windowCut;
    // Recovering from a 429 cut: one more slot per answer, so the window doubles each round trip
    // back to where it was; past that, the usual slow growth.
    this.d.window =
      cut && this.d.window < cut.target
        ? Math.min(cut.target, this.d.maxConcurrency, this.d.window + 1)
        : adaptWindow(this.d.window, this.d.maxConcurrency, 'success');
    if (output.elapsedMs !== undefined) {
      const known = this.d.callLatencyMs;
      this.d.callLatencyMs =
        known === null ? output.elapsedMs : known + LATENCY_WEIGHT * (output.elapsedMs - known);
    }
    const entry = this.d.rateWindow.find((e) => e.index === index);
    if (entry && !output.usageMissing) {
      entry.inputTokens = usage.promptTokens;
      entry.outputTokens = usage.completionTokens;
    }
  }

  /** Keeps the largest template overhead seen for requests like `item`. */
  private learnOverhead(item: PageItem, promptTokens: number): void {
    if (item.contentTokens === undefined || promptTokens <= 0) return;
    const seen = promptTokens - item.contentTokens;
    if (seen < 0) return;
    const key = overheadKeyOf(item);
    const known = this.d.templateOverheads[key];
    if (known === undefined || seen > known) this.d.templateOverheads[key] = seen;
  }

  /**
   * A call ended without an answer but may have been billed (timed out, abandoned, worker
   * lost): its whole reservation counts as spent.
   */
  callOutcomeUnknown(index: number): void {
    this.ledger.spendReservation(index);
  }

  /**
   * A call failed for a reason worth another attempt: the request goes back to the queue, to
   * start again (and reserve again) no sooner than `notBefore`.
   */
  callRetrying(item: PageItem, attemptsSoFar: number, notBefore: number): void {
    this.d.priorAttempts[item.index] = attemptsSoFar;
    this.d.retryQueue.push({ ...item, notBefore });
    this.ledger.requeue(item.index, item.cost, item.maxCost);
  }

  /**
   * A call answered 429: narrow the window, hold every start for `retryAfterMs`, and send the
   * request back to the queue while it has attempts left. Returns whether it was sent back.
   * With `cutOncePerRoundTrip`, a 429 to a call that started before the last cut does not cut
   * again: it answers the load that cut already addressed.
   */
  callRateLimited(
    item: PageItem,
    retryAfterMs: number,
    attemptsSoFar: number,
    maximumAttempts: number,
    cutOncePerRoundTrip = false,
  ): boolean {
    this.d.rateLimitedResponses += 1;
    const seq = this.d.callStartSeq[item.index];
    const cut = this.d.windowCut;
    const notBefore = this.now() + retryAfterMs;
    // A 429 to a call started before the last cut answers load that cut already addressed: its
    // Retry-After holds that request only, not the batch again.
    const stale = cutOncePerRoundTrip && cut !== null && seq !== undefined && seq <= cut.afterStart;
    if (!cutOncePerRoundTrip) {
      this.d.window = adaptWindow(this.d.window, this.d.maxConcurrency, 'rate_limited');
      this.d.windowCuts += 1;
    } else if (!stale) {
      const target = Math.max(this.d.window, cut && this.d.window < cut.target ? cut.target : 0);
      this.d.window = adaptWindow(this.d.window, this.d.maxConcurrency, 'rate_limited');
      this.d.windowCut = { afterStart: this.d.callsStarted, target };
      this.d.windowCuts += 1;
    }
    if (!stale) this.d.holdUntil = Math.max(this.d.holdUntil, notBefore);
    if (attemptsSoFar >= maximumAttempts) return false;
    this.d.priorAttempts[item.index] = attemptsSoFar;
    this.d.retryQueue.push(stale ? { ...item, notBefore } : item);
    this.ledger.requeue(item.index, item.cost, item.maxCost);
    return true;
  }

  /**
   * A run stopped before it called `item`: the request goes back to the front of the queue as
   * it was (no attempt spent, nothing billed, its minute's count given back).
   */
  callNotStarted(item: PageItem): void {
    const entry = this.d.rateWindow.findIndex((e) => e.index === item.index);
    if (entry !== -1) this.d.rateWindow.splice(entry, 1);
    this.d.retryQueue.unshift(item);
    this.ledger.requeue(item.index, item.cost, item.maxCost);
  }

  /**
   * Judges a failed call by `rules`: a refused key pauses the batch and an outage holds it (the
   * request goes back to the queue, no attempt spent); a 429 holds and narrows the window; an
   * answer off its schema is asked again; a retryable failure is retried while attempts remain.
   * Returns the attempts of a request that failed for good, or null when it went back to the queue.
   */
  callFailedWith(item: PageItem, failure: JudgedFailure, rules: FailureRules): { attempts: number } | null {
    const { index } = item;
    const { error } = failure;
    // With workflow retries every call is one attempt; before, Temporal's retries were inside it.
    const attemptsSoFar = (rules.workflowRetries ? 1 : failure.attempts) + this.priorAttemptsOf(index);
    const reasked = this.reasksOf(index) + (this.d.uncountedCalls[index] ?? 0);
    if (rules.workflowRetries && failure.billing === 'unknown') this.callOutcomeUnknown(index);
    const health = rules.apiHealth;
    if (health) {
      const kind = failureClassOf(error.type);
      if (kind === 'credentials') {
        this.d.credentialsError = {
          ...(error.status !== undefined ? { status: error.status } : {}),
          message: error.message,
        };
        this.requeueUnspent(item);
        return null;
      }
      if (kind === 'api' && !failure.healthNeutral) {
        if (!this.apiFailed(index, error.message, health)) {
          this.requeueUnspent(item);
          return null;
        }
      } else if (kind !== 'api') {
        this.apiAnswered(index);
      }
    }
    const holdMs = failure.retryAfterMs ?? rules.defaultRateLimitHoldMs;
    // A 429 goes back to the queue while attempts remain; anything else is the request's outcome.
    if (
      error.type === FailureTypes.RateLimited &&
      this.callRateLimited(item, holdMs, attemptsSoFar, rules.maximumAttempts, health !== undefined)
    ) {
      return null;
    }
    if (
      error.type === FailureTypes.InvalidStructuredOutput &&
      this.callAnsweredOff(item, failure.billedCost, rules.maxReasks)
    ) {
      return null;
    }
    if (rules.workflowRetries && failure.retryable && attemptsSoFar < rules.maximumAttempts) {
      this.callRetrying(item, attemptsSoFar, this.now() + rules.retryDelayMs(attemptsSoFar));
      return null;
    }
    this.callFailed(index);
    return { attempts: attemptsSoFar + reasked };
  }

  /**
   * A call failed on Maritaca's side. Returns whether it counts against the request: not during
   * an outage (a failed probe only backs the probing off), nor when it is the failure that
   * declares one (whose earlier failures in the streak are given back).
   */
  private apiFailed(index: number, message: string, health: NonNullable<FailureRules['apiHealth']>): boolean {
    const now = this.now();
    const outage = this.d.outage;
    if (outage) {
      if (now - outage.since >= health.outageTimeoutMs) {
        // Waited long enough: requests fail on their own attempts again, until Maritaca answers.
        this.d.outage = null;
        this.d.probeIndex = null;
        this.d.outageGaveUp = true;
        return true;
      }
      outage.lastError = message;
      if (this.d.probeIndex === index) {
        outage.probes += 1;
        outage.probeIntervalMs = Math.min(health.probeMaxIntervalMs, outage.probeIntervalMs * 2);
        outage.nextProbeAt = now + outage.probeIntervalMs;
      }
      return false;
    }
    if (this.d.outageGaveUp) return true;
    const streak = this.d.apiFailureStreak;
    if (streak.length === 0) this.d.streakSinceStart = this.d.callStartSeq[index] ?? this.d.callsStarted;
    streak.push(index);
    // Half the window at least: a wide window meets random failures in threes often, while an
    // outage fails every call in flight.
    if (streak.length < Math.max(health.failuresToTrip, Math.ceil(this.allowedInFlight / 2))) return true;
    for (const earlier of streak.slice(0, -1)) {
      const spent = this.d.priorAttempts[earlier];
      if (spent !== undefined && spent > 0) {
        this.d.priorAttempts[earlier] = spent - 1;
        this.d.uncountedCalls[earlier] = (this.d.uncountedCalls[earlier] ?? 0) + 1;
      }
    }
    this.d.apiFailureStreak = [];
    this.d.outage = {
      since: now,
      afterStart: this.d.callsStarted,
      nextProbeAt: now + health.probeIntervalMs,
      probeIntervalMs: health.probeIntervalMs,
      probes: 0,
      lastError: message,
    };
    return false;
  }

  /**
   * Maritaca answered the call of `index` (whatever it said): it is up, so the streak and any
   * outage are over, unless the call started before them (a run reports calls it made before the
   * failures, and a call in flight may answer late): that answer is old news.
   */
  private apiAnswered(index: number): void {
    const seq = this.d.callStartSeq[index];
    const outage = this.d.outage;
    if (outage) {
      if (seq !== undefined && outage.afterStart !== undefined && seq <= outage.afterStart) return;
      this.d.outage = null;
      this.d.probeIndex = null;
    }
    if (this.d.apiFailureStreak.length > 0) {
      // An answer to a call started before the streak still weighs against it (random failures
      // come with many answers), but only a later call's answer clears it.
      if (seq === undefined || seq >= this.d.streakSinceStart) this.d.apiFailureStreak = [];
      else this.d.apiFailureStreak.shift();
    }
    this.d.outageGaveUp = false;
  }

  /** Starts calls again after a pause, or after the worker's key was fixed (`resume`). */
  resume(): void {
    this.d.paused = false;
    this.d.credentialsError = null;
    this.changed();
  }

  /** A call that was made goes back to the front of the queue without spending an attempt. */
  private requeueUnspent(item: PageItem): void {
    this.d.uncountedCalls[item.index] = (this.d.uncountedCalls[item.index] ?? 0) + 1;
    this.d.retryQueue.unshift(item);
    this.ledger.requeue(item.index, item.cost, item.maxCost);
  }

  /** Attempts a request spent in earlier executions (each 429 ends one). */
  priorAttemptsOf(index: number): number {
    return this.d.priorAttempts[index] ?? 0;
  }

  /**
   * Maritaca answered (and billed `billedCost`) but not with the JSON the request asked for:
   * the cost is spent and, while `maxReasks` allows, the request goes back to ask again.
   * Returns whether it did.
   */
  callAnsweredOff(item: PageItem, billedCost: number | undefined, maxReasks: number): boolean {
    const { index } = item;
    this.ledger.settle(index, billedCost ?? this.ledger.reservationOf(index));
    const asked = this.d.reasks[index] ?? 0;
    if (asked >= maxReasks) return false;
    this.d.reasks[index] = asked + 1;
    this.d.retryQueue.push({ ...item, notBefore: 0 });
    this.ledger.requeue(index, item.cost, item.maxCost);
    return true;
  }

  /** Adds heartbeats a call reported (no change worth telling anyone about). */
  countHeartbeats(count: number | undefined): void {
    if (count) this.d.heartbeats += count;
  }

  /**
   * Calls a request made before this one beyond its counted attempts: re-asks, and calls during
   * an outage or to a refused key. Reported attempts add these (they are calls Maritaca saw).
   */
  extraCallsOf(index: number): number {
    return this.reasksOf(index) + (this.d.uncountedCalls[index] ?? 0);
  }

  /** Times a request was asked again for an answer that did not match its JSON. */
  reasksOf(index: number): number {
    return this.d.reasks[index] ?? 0;
  }

  /** A request failed for good. */
  callFailed(index: number): void {
    delete this.d.priorAttempts[index];
    delete this.d.reasks[index];
    delete this.d.uncountedCalls[index];
    this.d.failed += 1;
  }

  /**
   * A call is over, however it ended: it gives its reservation back and, when it `endsRun` (the
   * last call of its activity), the slot too.
   */
  callEnded(index: number, endsRun = true): void {
    this.d.inFlight -= 1;
    if (endsRun) this.d.runsInFlight -= 1;
    delete this.d.callStartSeq[index];
    if (this.d.probeIndex === index) this.d.probeIndex = null;
    this.ledger.release(index);
    this.changed();
  }

  /** Starts tracking a loaded page (once: a resumed run re-reads the page it stopped in). */
  openPage(start: number, end: number): void {
    if (end > start && !this.d.openPages.some((p) => p.start === start)) {
      this.d.openPages.push({ start, end, settled: 0 });
    }
  }

  /** Counts a request as settled for good; returns its page when that was the page's last one. */
  settle(index: number): { start: number; end: number } | null {
    const at = this.d.openPages.findIndex((p) => index >= p.start && index < p.end);
    if (at === -1) return null;
    const page = this.d.openPages[at]!;
    page.settled += 1;
    if (page.settled < page.end - page.start) return null;
    this.d.openPages.splice(at, 1);
    return { start: page.start, end: page.end };
  }

  /** What the batch spent on calls whose bill is unknown (their worst case). */
  get unconfirmedCost(): number {
    return this.ledger.unconfirmed;
  }

  /** Answer of the `progress` query. */
  progress(total: number): BatchProgress {
    const d = this.d;
    return {
      status: d.status,
      total,
      completed: d.succeeded + d.failed,
      succeeded: d.succeeded,
      failed: d.failed,
      inFlight: d.inFlight,
      pending: total - d.succeeded - d.failed - d.inFlight,
      estimate: d.estimate,
      approvedBudget: this.ledger.approved,
      actualCost: d.actualCost,
      currency: 'BRL',
      startedAt: d.startedAt,
      updatedAt: d.updatedAt,
      approval: d.approvals.at(-1) ?? null,
      rejectionReason: d.rejectionReason,
      approvals: d.approvals,
      waitingFor: d.waitingFor,
      budget: this.ledger.budgetState(),
      concurrency: { max: d.maxConcurrency, current: this.allowedInFlight, inUse: d.runsInFlight },
      paused: d.paused,
      rateLimitedResponses: d.rateLimitedResponses,
      windowCuts: d.windowCuts,
      ...(Object.keys(d.templateOverheads).length > 0 ? { templateOverhead: this.learnedOverhead() } : {}),
      ...(d.credentialsError ? { credentialsError: d.credentialsError } : {}),
      ...(d.outage
        ? {
            apiOutage: {
              since: new Date(d.outage.since).toISOString(),
              nextProbeAt: new Date(d.outage.nextProbeAt).toISOString(),
              probes: d.outage.probes,
              lastError: d.outage.lastError,
            },
          }
        : {}),
    };
  }

  /** The template overhead learned so far, per model, in the `templateOverhead` option's form. */
  learnedOverhead(): Record<string, TemplateOverhead> {
    return learnedTemplateOverheads(this.d.templateOverheads);
  }

  /** The state the next run starts from; `cursor` is where its paging resumes. */
  toCarried(cursor: { startIndex: number; byteOffset: number }): CarriedState {
    const carried = {} as Record<string, unknown>;
    for (const key of Object.keys(carriedDefaults(0))) carried[key] = this.d[key as keyof StateData];
    return { ...(carried as CarriedState), pageStartIndex: cursor.startIndex, byteOffset: cursor.byteOffset };
  }
}
