import { CancellationScope, condition, isCancellation, log, patched } from '@temporalio/workflow';
import {
  BLOCKED_STATE,
  DEFAULT_STRUCTURED_OUTPUT_RETRIES,
  RUN_TARGET_MS,
  callsPerRun,
  unwrittenRunAnswersAtMost,
  failureClassOf,
  parseDurationMs,
  decideDispatch,
  mayJoinRun,
  type BatchOptions,
  type AnsweredCall,
  type CallMaritacaInput,
  type CallMaritacaOutput,
  type DispatchView,
  type FailureRules,
  type BatchState,
  type BatchStatus,
  type PageItem,
  type Reservation,
  type RequestError,
  type RequestOutcome,
  type RunCallOutcome,
  type WaitingFor,
} from '../shared';
import { runOptionsOf, type BatchActivities } from './activities';
import { describeCallFailure, describeRunFailure, type DescribedFailure } from './call-failure';
import type { OutcomeBook } from './outcomes';
import type { PageQueue } from './pages';
import type { Reporter } from './reporting';

/**
 * Patch id: a lost run on an S3 store counts the answers its log may have held back as made
 * (earlier versions assumed every answer was written before the next call).
 */
const S3_RUN_LOG_PATCH = 's3-run-logs';

/** Hold applied after a 429 that carried no `Retry-After`. */
const DEFAULT_RATE_LIMIT_HOLD_MS = 1_000;
/** What each kind of timed wait is called in the event history. */
const TIMER_SUMMARY: Record<Exclude<WaitingFor, null>, string> = {
  approval: 'approval timeout',
  budget: 'budget approval timeout',
  rate_limit: 'per-minute rate window',
  retry_after: 'Retry-After hold',
  pause: 'pause',
  credentials: 'refused key',
  api_unavailable: 'next API probe',
};

/** A request that failed the batch (`returnExceptions: false`). */
export interface FatalFailure {
  id: string;
  index: number;
  error: RequestError;
  attempts: number;
}

/** How the dispatch loop ended. */
export type DispatchEnd =
  | { kind: 'done'; status: BatchStatus }
  | { kind: 'continue' }
  | { kind: 'cancelled' }
  | { kind: 'fatal'; failure: FatalFailure };

/** Everything the loop works with. */
export interface DispatchContext {
  state: BatchState;
  reporter: Reporter;
  pages: PageQueue;
  book: OutcomeBook;
  activities: Pick<
    BatchActivities,
    | 'callMaritaca'
    | 'callMaritacaRun'
    | 'callOptions'
    | 'appendOutcomes'
    | 'answeredInStore'
    | 'leaseKeyCapacity'
  >;
  options: BatchOptions;
  maximumAttempts: number;
  historyEventLimit: number;
  approvalTimeoutMs: number | undefined;
  /** Finished pages are compacted in the store (not in runs that began before compaction existed). */
  compactPages: boolean;
  /**
   * Failed calls come back to the workflow after one attempt: it counts the ones that may have
   * been billed and schedules the next attempt itself (not in runs that began before this existed,
   * whose calls Temporal retries on its own).
   */
  workflowRetries: boolean;
  /** Wait before the Nth retry of a request (N from 1), when {@link workflowRetries} is on. */
  retryDelayMs: (retry: number) => number;
  /**
   * Several requests may share one activity, called one after another with one outcome each
   * (not in runs that began before runs existed).
   */
  callRuns: boolean;
  /** Requests not yet settled or started: never started, or sent back to the queue. */
  queued: () => number;
  /** Outages, refused keys and 429s handled batch-wide (not in runs that began before this existed). */
  apiHealth?: FailureRules['apiHealth'];
  /**
   * Starts are leased from the key's limiter when the worker declares the key's limits
   * (`MARITACA_RATE_LIMIT`); not in runs that began before leases existed.
   */
  keyLeases: boolean;
}

/** Capacity leased from the key's limiter and not used yet. */
interface HeldLease {
  requests: number;
  inputTokens: number;
  outputTokens: number;
  grantedAt: number;
}

/** A request's outcome when it failed for good. */
type FailedOutcome = Extract<RequestOutcome, { ok: false }>;

/** What became of one call, as the workflow settles it. */
type CallSettlement =
  | { kind: 'answered'; output: CallMaritacaOutput }
  | { kind: 'failed'; failure: DescribedFailure }
  | { kind: 'aborted' }
  | { kind: 'not_started' };

/**
 * Starts every request through the window the policy allows, until all are settled, the batch
 * must continue as new, it runs out of budget for good, it is cancelled, or a request fails it.
 */
export class Dispatcher {
  // Every Maritaca call runs in this scope, so a fatal failure can cancel the ones still in flight.
  private readonly callScope = new CancellationScope();
  private fatal: FatalFailure | null = null;
  private cancelled = false;

  /** How failed calls are judged. */
  private readonly rules: FailureRules;
  /** Whether the worker declares the key's limits: unknown until the first lease answers. */
  private keyLimited: boolean | null = null;
  /** Leased capacity not used yet (oldest first), a lease being asked for, and when to ask again. */
  private readonly leases: HeldLease[] = [];
  private leasing = false;
  private leaseAgainAt = 0;
  /** Tokens reserved but not used, by the grant they came from: given back with the next demand. */
  private readonly unusedTokens = new Map<number, { inputTokens: number; outputTokens: number }>();
  /** The grant each call in flight was started under. */
  private readonly grantOf = new Map<number, number>();

  constructor(private readonly ctx: DispatchContext) {
    this.rules = {
      maximumAttempts: ctx.maximumAttempts,
      workflowRetries: ctx.workflowRetries,
      maxReasks: ctx.options.structuredOutputRetries ?? DEFAULT_STRUCTURED_OUTPUT_RETRIES,
      retryDelayMs: ctx.retryDelayMs,
      defaultRateLimitHoldMs: DEFAULT_RATE_LIMIT_HOLD_MS,
      ...(ctx.apiHealth ? { apiHealth: ctx.apiHealth } : {}),
    };
  }

  /** Runs the loop to its end. */
  async run(): Promise<DispatchEnd> {
    const { state, pages } = this.ctx;
    let end: DispatchEnd = { kind: 'done', status: 'completed' };
    try {
      for (;;) {
        const step = await this.step();
        if (step) {
          end = step;
          break;
        }
      }
      await condition(() => state.view.inFlight === 0 && !pages.loading && pages.compacting === 0);
    } catch (err) {
      if (!isCancellation(err)) throw err;
      this.cancelled = true;
      // Wait, uncancellably, until every in-flight call has confirmed its cancellation.
      await CancellationScope.nonCancellable(() => condition(() => state.view.inFlight === 0));
      return { kind: 'cancelled' };
    }
    return this.fatal ? { kind: 'fatal', failure: this.fatal } : end;
  }

  /** One turn of the loop: start a request, or wait for what blocks it. Returns how the loop ends, if it does. */
  private async step(): Promise<DispatchEnd | null> {
    const { state, reporter, pages } = this.ctx;
    if (this.fatal) return { kind: 'fatal', failure: this.fatal };
    if (state.view.rejected && state.view.status === 'awaiting_budget')
      return { kind: 'done', status: 'budget_exhausted' };
    // Runs of calls put many requests in one event: their histories are bounded in bytes too.
    if (pages.shouldContinueAsNew(this.ctx.historyEventLimit, this.ctx.callRuns)) return { kind: 'continue' };
    pages.refill();
    const now = Date.now();
    const next = pages.peek(now);
    const seen = state.view.version;
    const changed = () => state.view.version !== seen;
    if (next === undefined) {
      const retryAt = state.nextRetryAt(now);
      if (retryAt === null && state.view.inFlight === 0 && !pages.loading && !pages.moreToLoad())
        return { kind: 'done', status: 'completed' };
      if (retryAt === null) await condition(changed);
      else await condition(changed, retryAt - now, { summary: 'retry backoff' });
      return null;
    }
    const reservation = state.reservationOf(next);
    const decision = decideDispatch(this.dispatchView(), reservation, now);
    if (decision.start) {
      reporter.setStatus('running');
      // A probe goes alone: it is the one call that finds out whether Maritaca is back.
      const size = this.ctx.callRuns && !decision.probe ? this.runSize() : 1;
      if (size > 1) {
        this.startRun(next, reservation, size, now);
        return null;
      }
      state.takeNext(pages.buffer, next);
      this.takeFromLease(next.index, reservation);
      this.start(next, reservation, decision.probe === true);
      return null;
    }
    if (decision.reason === 'key_lease') {
      // The key's limit is shared through its limiter: wait for a lease (asked for here).
      if (!this.leasing && now >= this.leaseAgainAt) this.askForLease(reservation);
      reporter.setStatus('running', this.keyLimited ? 'rate_limit' : null);
      if (!this.leasing && this.leaseAgainAt > now)
        await condition(changed, this.leaseAgainAt - now, { summary: 'key limiter' });
      else await condition(changed);
      return null;
    }
    const { status, waitingFor } = BLOCKED_STATE[decision.reason];
    reporter.setStatus(status, waitingFor);
    const timeoutMs =
      decision.until !== undefined
        ? decision.until - now
        : decision.reason === 'awaiting_budget'
          ? this.ctx.approvalTimeoutMs
          : undefined;
    if (timeoutMs === undefined) {
      await condition(changed);
    } else if (
      !(await condition(changed, timeoutMs, { summary: TIMER_SUMMARY[waitingFor ?? 'budget'] })) &&
      decision.reason === 'awaiting_budget'
    ) {
      return { kind: 'done', status: 'budget_exhausted' };
    }
    return null;
  }

  /** How many requests the next activity should carry. */
  private runSize(): number {
    const { state, options } = this.ctx;
    return callsPerRun({
      setting: options.callsPerActivity,
      latencyMs: state.view.callLatencyMs,
      queued: this.ctx.queued(),
      slots: state.allowedInFlight,
      // A key's lease counts a start when it is granted: each must start then.
      rateLimited: options.rateLimit !== undefined || this.keyLimited === true,
    });
  }

  /** The snapshot the policy decides on, with the key's leased capacity when its limits are shared. */
  private dispatchView(): DispatchView {
    const view = this.ctx.state.dispatchView(this.ctx.options.rateLimit);
    if (!this.ctx.keyLeases || this.keyLimited === false) return view;
    const keyLease = { requests: 0, inputTokens: 0, outputTokens: 0 };
    for (const lease of this.leases) {
      keyLease.requests += lease.requests;
      keyLease.inputTokens += lease.inputTokens;
      keyLease.outputTokens += lease.outputTokens;
    }
    return { ...view, keyLease };
  }

  /** Spends one request and its tokens of leased capacity on the call of `index`, oldest lease first. */
  private takeFromLease(index: number, reservation: Reservation): void {
    if (!this.keyLimited) return;
    const counting = this.leases.find((lease) => lease.requests > 0)!;
    counting.requests -= 1;
    this.grantOf.set(index, counting.grantedAt);
    let input = reservation.inputTokens;
    let output = reservation.outputTokens;
    for (const lease of this.leases) {
      const inputOff = Math.min(input, lease.inputTokens);
      const outputOff = Math.min(output, lease.outputTokens);
      lease.inputTokens -= inputOff;
      lease.outputTokens -= outputOff;
      input -= inputOff;
      output -= outputOff;
    }
    // A lease with no start left gives the tokens it still holds back to the key.
    for (let at = this.leases.length - 1; at >= 0; at--) {
      const lease = this.leases[at]!;
      if (lease.requests > 0) continue;
      this.giveBack(lease.grantedAt, lease.inputTokens, lease.outputTokens);
      this.leases.splice(at, 1);
    }
  }

  /** Notes tokens of a grant that will not be used, for the next demand to give back. */
  private giveBack(grantedAt: number, inputTokens: number, outputTokens: number): void {
    if (inputTokens <= 0 && outputTokens <= 0) return;
    const known = this.unusedTokens.get(grantedAt) ?? { inputTokens: 0, outputTokens: 0 };
    known.inputTokens += Math.max(0, inputTokens);
    known.outputTokens += Math.max(0, outputTokens);
    this.unusedTokens.set(grantedAt, known);
  }

  /**
   * Asks the key's limiter for a window's worth of starts like `reservation`, giving back the
   * tokens earlier grants did not use. The answer (a grant, possibly zero with a wait, or word
   * that the worker declares no limit) wakes the loop.
   */
  private askForLease(reservation: Reservation): void {
    const { state, activities, options } = this.ctx;
    const requests = Math.max(1, Math.min(this.ctx.queued(), state.allowedInFlight));
    const returned = [...this.unusedTokens].map(([grantedAt, tokens]) => ({ grantedAt, ...tokens }));
    this.unusedTokens.clear();
    this.leasing = true;
    void activities
      .leaseKeyCapacity({
        requests,
        inputTokens: reservation.inputTokens * requests,
        outputTokens: reservation.outputTokens * requests,
        ...(options.priority !== undefined ? { priority: options.priority } : {}),
        ...(returned.length > 0 ? { returned } : {}),
      })
      .then(
        (lease) => {
          if (lease.unlimited) {
            this.keyLimited = false;
            return;
          }
          this.keyLimited = true;
          if (lease.requests > 0) this.leases.push({ ...lease });
          else this.leaseAgainAt = Date.now() + Math.max(100, lease.retryAfterMs ?? 1_000);
        },
        (err: unknown) => {
          log.warn('Could not lease capacity from the key limiter; asking again', {
            error: (err as Error).message,
          });
          this.leaseAgainAt = Date.now() + 5_000;
        },
      )
      .finally(() => {
        this.leasing = false;
        state.bump();
      });
  }

  /**
   * Starts `first` and up to `size - 1` requests queued behind it that may start now, in one
   * activity that holds one slot of the window.
   */
  private startRun(first: PageItem, reservation: Reservation, size: number, now: number): void {
    const { state, pages } = this.ctx;
    const items = [first];
    state.takeNext(pages.buffer, first);
    state.startCall(first, false, reservation);
    while (items.length < size) {
      pages.refill();
      const next = pages.peek(now);
      if (next === undefined) break;
      const joining = state.reservationOf(next);
      if (!mayJoinRun(this.dispatchView(), joining, now)) break;
      state.takeNext(pages.buffer, next);
      state.startCall(next, false, joining, true);
      items.push(next);
    }
    void this.runCalls(items);
  }

  private start(item: PageItem, reservation: Reservation, probe = false): void {
    this.ctx.state.startCall(item, this.ctx.options.rateLimit !== undefined, reservation, false, probe);
    void this.runRequest(item);
  }

  // The steps of a call stay in one function, awaiting exactly where they always did: the order
  // of commands in an activation depends on it, and recorded histories must keep replaying.
  private async runRequest(item: PageItem): Promise<void> {
    const { state, activities, maximumAttempts } = this.ctx;
    const { call, index } = item;
    try {
      const output = await this.callScope.run(() =>
        activities.callMaritaca.executeWithOptions(
          { ...activities.callOptions, summary: `request ${call.requestId}` },
          [this.callInput(item)],
        ),
      );
      this.answered(item, output);
    } catch (err) {
      if (isCancellation(err) && (this.cancelled || this.fatal)) {
        // An aborted call may still have been generated and billed.
        if (this.ctx.workflowRetries) state.callOutcomeUnknown(index);
        return;
      }
      const outcome = this.failed(item, describeCallFailure(err, maximumAttempts));
      if (!outcome) return;
      try {
        await CancellationScope.nonCancellable(() => this.keep([outcome]));
      } catch (writeError) {
        this.keepFailed([outcome], writeError);
      }
      this.failedForGood([outcome]);
    } finally {
      state.callEnded(index);
    }
  }

  /**
   * Calls `items` one after another in one activity, then settles each by its own outcome. A run
   * that never reports back (its worker was lost, it timed out) settles every call as that
   * failure: any of them may have been made, so each counts at its worst case and is retried.
   */
  private async runCalls(items: PageItem[]): Promise<void> {
    const { state, activities, maximumAttempts } = this.ctx;
    const first = items[0]!.call.requestId;
    const last = items.at(-1)!.call.requestId;
    let settlements: CallSettlement[];
    try {
      const output = await this.callScope.run(() =>
        activities.callMaritacaRun.executeWithOptions(
          {
            ...runOptionsOf(activities.callOptions, items.length),
            summary: `requests ${first} … ${last} (${items.length})`,
          },
          [{ calls: items.map((item) => this.callInput(item)), startWithinMs: 2 * RUN_TARGET_MS }],
        ),
      );
      state.countHeartbeats(output.heartbeats);
      settlements = output.outcomes.map((outcome) => this.settlementOf(outcome));
    } catch (err) {
      settlements =
        isCancellation(err) && (this.cancelled || this.fatal)
          ? items.map(() => ({ kind: 'aborted' }))
          : await this.lostRun(items, describeCallFailure(err, maximumAttempts));
    }
    const failures: FailedOutcome[] = [];
    try {
      // A run that ended on a failure of Maritaca's: its earlier answers are older news from the
      // same slot than that failure, so they do not say Maritaca is up.
      const last = [...settlements].reverse().find((s) => s.kind !== 'not_started');
      const endedOnApiFailure = last?.kind === 'failed' && failureClassOf(last.failure.error.type) === 'api';
      items.forEach((item, at) => {
        const settlement = settlements[at] ?? { kind: 'not_started' };
        switch (settlement.kind) {
          case 'answered':
            this.answered(item, settlement.output, !endedOnApiFailure);
            return;
          case 'not_started':
            state.callNotStarted(item);
            return;
          case 'aborted':
            // Aborted by a cancel or a failing batch: it may still have been generated and billed.
            state.callOutcomeUnknown(item.index);
            return;
          case 'failed': {
            const outcome = this.failed(item, settlement.failure);
            if (outcome) failures.push(outcome);
          }
        }
      });
      if (failures.length === 0) return;
      try {
        await CancellationScope.nonCancellable(() => this.keep(failures));
      } catch (writeError) {
        this.keepFailed(failures, writeError);
      }
      this.failedForGood(failures);
    } finally {
      items.forEach((item, at) => state.callEnded(item.index, at === items.length - 1));
    }
  }

  /**
   * A run that never reported back (its worker died, it timed out). Its calls went one after
   * another, each answer written to the store before the next call: the ones the store holds were
   * answered; the others up to the last answered one, and the one after it, were made and may have
   * been billed (they are retried, counted at their worst case); the rest were never made.
   */
  private async lostRun(items: PageItem[], failure: DescribedFailure): Promise<CallSettlement[]> {
    const { state, activities } = this.ctx;
    const made: CallSettlement = { kind: 'failed', failure };
    // A failed call that says nothing about Maritaca's health.
    const madeQuietly: CallSettlement = { kind: 'failed', failure: { ...failure, healthNeutral: true } };
    if (!state.view.results) return items.map(() => made);
    let answered: AnsweredCall[] = [];
    try {
      answered = await CancellationScope.nonCancellable(() =>
        activities.answeredInStore({
          results: state.view.results!,
          indexes: items.map((item) => item.index),
          ...(this.ctx.book.stored ? {} : { withResults: true }),
        }),
      );
    } catch (err) {
      log.warn('Could not read which calls of a lost run were answered; retrying them all', {
        error: (err as Error).message,
      });
      return items.map(() => made);
    }
    const byIndex = new Map(answered.map((call) => [call.index, call]));
    let lastAnswered = -1;
    items.forEach((item, at) => {
      if (byIndex.has(item.index)) lastAnswered = at;
    });
    // Where the store holds a run's answers back (S3 writes several per object), the calls after
    // the last answer it has may have been answered too: they count as made, maybe billed.
    const heldBack = unwrittenRunAnswersAtMost(state.view.results);
    const mayHaveBeenMade = heldBack > 0 && patched(S3_RUN_LOG_PATCH) ? heldBack + 1 : 1;
    return items.map((item, at): CallSettlement => {
      const call = byIndex.get(item.index);
      if (call) {
        const output = { cost: call.cost, usage: call.usage, attempt: 1 };
        return { kind: 'answered', output: call.result ? { ...output, result: call.result } : output };
      }
      // Calls before the last answered one had failed on their own (a run goes on only then):
      // only the call in flight when the run was lost says anything about Maritaca.
      if (at < lastAnswered) return madeQuietly;
      if (at === lastAnswered + 1) return made;
      return at <= lastAnswered + mayHaveBeenMade ? madeQuietly : { kind: 'not_started' };
    });
  }

  /** Keeps the outcomes of requests that failed for good (inline), or writes them to the store. */
  private async keep(failures: FailedOutcome[]): Promise<void> {
    const { state, book, activities } = this.ctx;
    for (const outcome of failures) book.keep(outcome);
    if (book.stored) await activities.appendOutcomes({ results: state.view.results!, outcomes: failures });
  }

  /** Says which failures the store could not take (they are still counted and settled). */
  private keepFailed(failures: FailedOutcome[], writeError: unknown): void {
    log.error('Could not record failed requests in the results store', {
      requestIds: failures.map((f) => f.id),
      error: (writeError as Error).message,
    });
  }

  /** Settles requests that failed for good; without `returnExceptions` the first fails the batch. */
  private failedForGood(failures: FailedOutcome[]): void {
    for (const outcome of failures) this.settle(outcome.index);
    const fatal = failures[0]!;
    if (!this.ctx.options.returnExceptions && !this.fatal) {
      this.fatal = { id: fatal.id, index: fatal.index, error: fatal.error, attempts: fatal.attempts };
      this.callScope.cancel();
    }
  }

  /** A run's outcome of one call, in the terms the workflow settles calls by. */
  private settlementOf(outcome: RunCallOutcome): CallSettlement {
    if (outcome.kind !== 'failed') return outcome;
    return { kind: 'failed', failure: describeRunFailure(outcome.failure, this.ctx.maximumAttempts) };
  }

  /** What the activity calling `item` is given. */
  private callInput(item: PageItem): CallMaritacaInput {
    const { state, book, maximumAttempts, options } = this.ctx;
    const { call, index } = item;
    const timeoutMs = this.ctx.callRuns ? parseDurationMs(options.requestTimeout) : undefined;
    return {
      ...call,
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      ...(book.stored || (this.ctx.callRuns && state.view.results) ? { store: this.storeInput(index) } : {}),
      ...(this.ctx.workflowRetries
        ? { requestAttempt: { number: state.priorAttemptsOf(index) + 1, of: maximumAttempts } }
        : {}),
    };
  }

  /** Where the activity writes the answer to `index`, and the attempts it spent before this call. */
  private storeInput(index: number): NonNullable<CallMaritacaInput['store']> {
    const { state } = this.ctx;
    const attemptsBefore = state.priorAttemptsOf(index) + state.extraCallsOf(index);
    return {
      results: state.view.results!,
      index,
      ...(attemptsBefore > 0 ? { attemptsBefore } : {}),
      // An inline batch keeps its answers in the workflow: the stored one is a receipt.
      ...(this.ctx.book.stored ? {} : { returnResult: true }),
    };
  }

  /** Maritaca answered `item`: keep the answer (inline batches), spend its cost, settle it. */
  private answered(item: PageItem, output: CallMaritacaOutput, healthEvidence = true): void {
    const { state, book } = this.ctx;
    const { call, index } = item;
    const grantedAt = this.grantOf.get(index);
    if (grantedAt !== undefined && !output.usageMissing) {
      // What the lease counted beyond what the call used goes back to the key.
      const reserved = state.reservationOf(item);
      this.giveBack(
        grantedAt,
        reserved.inputTokens - output.usage.promptTokens,
        reserved.outputTokens - output.usage.completionTokens,
      );
    }
    this.grantOf.delete(index);
    if (!book.stored && output.result) {
      book.keep({
        id: call.requestId,
        index,
        ok: true,
        result: output.result,
        attempts: output.attempt + state.priorAttemptsOf(index) + state.extraCallsOf(index),
        cost: output.cost,
      });
    }
    state.countHeartbeats(output.heartbeats);
    state.callSucceeded(item, output, healthEvidence);
    this.settle(index);
  }

  /**
   * A call of `item` failed: a 429, a re-ask or a retry sends it back to the queue (null);
   * anything else fails the request, whose outcome is returned for the caller to record.
   */
  private failed(item: PageItem, failure: DescribedFailure): FailedOutcome | null {
    const { call, index } = item;
    this.ctx.state.countHeartbeats(failure.heartbeats);
    const failed = this.ctx.state.callFailedWith(item, failure, this.rules);
    if (!failed) return null;
    return { id: call.requestId, index, ok: false, error: failure.error, attempts: failed.attempts };
  }

  /** Counts a request as settled for good; its page is compacted once all of its requests are. */
  private settle(index: number): void {
    const { state, book, pages } = this.ctx;
    const page = state.settle(index);
    if (!page) return;
    if (!book.stored) pages.settledInline.push(page);
    else if (this.ctx.compactPages && state.view.results?.type === 'objects')
      pages.compact(state.view.results, page);
  }
}
