import { CancellationScope, condition, isCancellation, log } from '@temporalio/workflow';
import {
  BLOCKED_STATE,
  DEFAULT_STRUCTURED_OUTPUT_RETRIES,
  FailureTypes,
  decideDispatch,
  type BatchOptions,
  type BatchState,
  type BatchStatus,
  type PageItem,
  type Reservation,
  type RequestError,
  type RequestOutcome,
  type WaitingFor,
} from '../shared';
import type { BatchActivities } from './activities';
import { describeCallFailure } from './call-failure';
import type { OutcomeBook } from './outcomes';
import type { PageQueue } from './pages';
import type { Reporter } from './reporting';

/** Hold applied after a 429 that carried no `Retry-After`. */
const DEFAULT_RATE_LIMIT_HOLD_MS = 1_000;
/** What each kind of timed wait is called in the event history. */
const TIMER_SUMMARY: Record<Exclude<WaitingFor, null>, string> = {
  approval: 'approval timeout',
  budget: 'budget approval timeout',
  rate_limit: 'per-minute rate window',
  retry_after: 'Retry-After hold',
  pause: 'pause',
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
  activities: Pick<BatchActivities, 'callMaritaca' | 'callOptions' | 'appendOutcomes'>;
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
}

/**
 * Starts every request through the window the policy allows, until all are settled, the batch
 * must continue as new, it runs out of budget for good, it is cancelled, or a request fails it.
 */
export class Dispatcher {
  // Every Maritaca call runs in this scope, so a fatal failure can cancel the ones still in flight.
  private readonly callScope = new CancellationScope();
  private fatal: FatalFailure | null = null;
  private cancelled = false;

  constructor(private readonly ctx: DispatchContext) {}

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
    if (pages.shouldContinueAsNew(this.ctx.historyEventLimit)) return { kind: 'continue' };
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
    const decision = decideDispatch(state.dispatchView(this.ctx.options.rateLimit), reservation, now);
    if (decision.start) {
      reporter.setStatus('running');
      state.takeNext(pages.buffer, next);
      this.start(next, reservation);
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

  private start(item: PageItem, reservation: Reservation): void {
    this.ctx.state.startCall(item, this.ctx.options.rateLimit !== undefined, reservation);
    void this.runRequest(item);
  }

  // The steps of a call stay in one function, awaiting exactly where they always did: the order
  // of commands in an activation depends on it, and recorded histories must keep replaying.
  private async runRequest(item: PageItem): Promise<void> {
    const { state, book, activities, options, maximumAttempts } = this.ctx;
    const { call, index } = item;
    try {
      const output = await this.callScope.run(() =>
        activities.callMaritaca.executeWithOptions(
          { ...activities.callOptions, summary: `request ${call.requestId}` },
          [
            {
              ...call,
              ...(book.stored ? { store: { results: state.view.results!, index } } : {}),
              ...(this.ctx.workflowRetries
                ? { requestAttempt: { number: state.priorAttemptsOf(index) + 1, of: maximumAttempts } }
                : {}),
            },
          ],
        ),
      );
      if (!book.stored && output.result) {
        book.keep({
          id: call.requestId,
          index,
          ok: true,
          result: output.result,
          attempts: output.attempt + state.priorAttemptsOf(index) + state.reasksOf(index),
          cost: output.cost,
        });
      }
      state.countHeartbeats(output.heartbeats);
      state.callSucceeded(item, output);
      this.settle(index);
    } catch (err) {
      const { workflowRetries } = this.ctx;
      if (isCancellation(err) && (this.cancelled || this.fatal)) {
        // An aborted call may still have been generated and billed.
        if (workflowRetries) state.callOutcomeUnknown(index);
        return;
      }
      const failure = describeCallFailure(err, maximumAttempts);
      state.countHeartbeats(failure.heartbeats);
      const { error, retryAfterMs } = failure;
      // With workflow retries every call is one attempt; before, Temporal's retries were inside it.
      const attemptsSoFar = (workflowRetries ? 1 : failure.attempts) + state.priorAttemptsOf(index);
      const reasked = state.reasksOf(index);
      if (workflowRetries && failure.billing === 'unknown') state.callOutcomeUnknown(index);
      const holdMs = retryAfterMs ?? DEFAULT_RATE_LIMIT_HOLD_MS;
      // A 429 goes back to the queue while attempts remain; anything else is the request's outcome.
      if (
        error.type === FailureTypes.RateLimited &&
        state.callRateLimited(item, holdMs, attemptsSoFar, maximumAttempts)
      ) {
        return;
      }
      if (
        error.type === FailureTypes.InvalidStructuredOutput &&
        state.callAnsweredOff(
          item,
          failure.billedCost,
          options.structuredOutputRetries ?? DEFAULT_STRUCTURED_OUTPUT_RETRIES,
        )
      ) {
        return;
      }
      if (workflowRetries && failure.retryable && attemptsSoFar < maximumAttempts) {
        state.callRetrying(item, attemptsSoFar, Date.now() + this.ctx.retryDelayMs(attemptsSoFar));
        return;
      }
      state.callFailed(index);
      const outcome: RequestOutcome = {
        id: call.requestId,
        index,
        ok: false,
        error,
        attempts: attemptsSoFar + reasked,
      };
      const record = async (): Promise<void> => {
        book.keep(outcome);
        if (book.stored)
          await activities.appendOutcomes({ results: state.view.results!, outcomes: [outcome] });
      };
      try {
        await CancellationScope.nonCancellable(record);
      } catch (writeError) {
        log.error('Could not record a failed request in the results store', {
          requestId: call.requestId,
          error: (writeError as Error).message,
        });
      }
      this.settle(index);
      if (!options.returnExceptions && !this.fatal) {
        this.fatal = { id: call.requestId, index, error, attempts: attemptsSoFar + reasked };
        this.callScope.cancel();
      }
    } finally {
      state.callEnded(index);
    }
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
