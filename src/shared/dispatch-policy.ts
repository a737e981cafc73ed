import type { BudgetLedger } from './budget-ledger';
import { MAX_AUTO_CALLS_PER_ACTIVITY, RUN_TARGET_MS } from './constants';
import { pruneWindow, rateWaitMs, type RateLimits, type WindowEntry } from './rate-window';
import type { BatchStatus, WaitingFor } from './types';

/** Why the next request may not start now. */
export type BlockReason =
  | 'paused'
  | 'awaiting_credentials'
  | 'api_unavailable'
  | 'api_failing'
  | 'window_full'
  | 'retry_after'
  | 'rate_limit'
  | 'budget'
  | 'awaiting_budget'
  | 'key_lease';

/** What the policy reads: a plain snapshot of the batch, taken when the question is asked. */
export interface DispatchView {
  paused: boolean;
  inFlight: number;
  /** The concurrency window after 429 back-off (fractional; see `adaptWindow`). */
  window: number;
  maxConcurrency: number;
  /** Workflow time (ms) until which a 429's Retry-After holds every start. */
  holdUntil: number;
  /** The key's per-minute limits, when declared. */
  rateLimit?: RateLimits;
  /** Starts still counted in the per-minute window (pruned in place as time passes). */
  rateWindow: WindowEntry[];
  ledger: BudgetLedger;
  /** Maritaca refused the key or account: nothing starts until `resume`. */
  credentialsRefused?: boolean;
  /** An outage being waited out: when the next probe may go, and whether one is in flight. */
  outage?: { nextProbeAt: number; probing: boolean } | null;
  /** Maritaca failed the last call(s) answered: at most half the window busy until an answer comes. */
  apiFailing?: boolean;
  /**
   * Capacity leased from the key's limiter and not used yet, when the key's limits are shared
   * (absent when the worker declares none): a start needs one request and its tokens of it.
   */
  keyLease?: { requests: number; inputTokens: number; outputTokens: number };
}

/** The request that would start next: the tokens it may use and its worst-case cost. */
export interface DispatchCandidate {
  inputTokens: number;
  outputTokens: number;
  maxCost: number;
}

/** The policy's answer: start now, or why not and (for time-based blocks) until when. */
export type DispatchDecision =
  /** `probe`: the API is down and this call is the one that finds out whether it is back. */
  | { start: true; probe?: true }
  | {
      start: false;
      reason: BlockReason;
      /** Workflow time (ms) at which the block lifts by itself; absent when only an event can lift it. */
      until?: number;
    };

/** Status and `waitingFor` a batch shows while blocked for each reason. */
export const BLOCKED_STATE: Record<BlockReason, { status: BatchStatus; waitingFor: WaitingFor }> = {
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
};

/** Calls that may be in flight at once: the window, never above `maxConcurrency` nor below 1. */
export function allowedInFlight(window: number, maxConcurrency: number): number {
  return Math.max(1, Math.min(maxConcurrency, Math.floor(window)));
}

/**
 * May the next request start at `now`, and if not, why and until when. The order of the checks
 * is the order of what a person can do about them: a pause, a refused key, an outage (one probe
 * at a time, when its wait is over), the window, a 429's hold, the key's per-minute limits, then
 * the budget (which waits for calls in flight to settle before it asks anyone for more).
 */
export function decideDispatch(
  view: DispatchView,
  candidate: DispatchCandidate,
  now: number,
): DispatchDecision {
  if (view.paused) return { start: false, reason: 'paused' };
  if (view.credentialsRefused) return { start: false, reason: 'awaiting_credentials' };
  const { outage } = view;
  if (outage) {
    if (outage.probing) return { start: false, reason: 'api_unavailable' };
    if (now < outage.nextProbeAt)
      return { start: false, reason: 'api_unavailable', until: outage.nextProbeAt };
  }
  // After a failure of Maritaca's, at most half the window stays busy until an answer comes: a
  // burst of new calls into an outage would only add failures before the breaker trips, while
  // random failures should cost little.
  if (view.apiFailing && view.inFlight >= Math.ceil(allowedInFlight(view.window, view.maxConcurrency) / 2)) {
    return { start: false, reason: 'api_failing' };
  }
  if (view.inFlight >= allowedInFlight(view.window, view.maxConcurrency)) {
    return { start: false, reason: 'window_full' };
  }
  if (now < view.holdUntil) return { start: false, reason: 'retry_after', until: view.holdUntil };
  if (view.rateLimit) {
    pruneWindow(view.rateWindow, now);
    const wait = rateWaitMs(
      view.rateWindow,
      view.rateLimit,
      now,
      candidate.inputTokens,
      candidate.outputTokens,
    );
    if (wait > 0) return { start: false, reason: 'rate_limit', until: now + wait };
  }
  if (!view.ledger.fits(candidate.maxCost)) {
    // With calls in flight, their real cost may free room; with none, only a person can.
    return { start: false, reason: view.inFlight > 0 ? 'budget' : 'awaiting_budget' };
  }
  // Last: a lease is asked for only when nothing else holds the start back.
  if (view.keyLease && !leaseCovers(view.keyLease, candidate)) return { start: false, reason: 'key_lease' };
  return outage ? { start: true, probe: true } : { start: true };
}

/** What sizes the next run of calls. */
export interface RunSizing {
  /** The batch's `callsPerActivity`: a fixed number, or `auto` (sized from latency). */
  setting: number | 'auto' | undefined;
  /** Average time Maritaca took to answer this batch's calls so far; null before any answer. */
  latencyMs: number | null;
  /** Requests waiting to start (never started, or sent back). */
  queued: number;
  /** Runs that may be in flight at once (the window). */
  slots: number;
  /** A per-minute limit is declared: each start must be counted when it really happens. */
  rateLimited: boolean;
}

/**
 * How many requests the next activity calls one after another. Several calls per activity share
 * one activity schedule and one workflow task, which is most of what a call costs Temporal when
 * Maritaca answers fast. `auto` aims for runs of about {@link RUN_TARGET_MS}: one call until the
 * batch has seen an answer, and one call whenever per-minute limits are declared (a run's later
 * calls would start after the minute the workflow counted them in). Runs never take more than an
 * even share of what is queued, so the end of a batch is spread over every slot.
 */
export function callsPerRun(sizing: RunSizing): number {
  const { setting, latencyMs, queued, slots } = sizing;
  if (sizing.rateLimited) return 1;
  let calls: number;
  if (setting !== undefined && setting !== 'auto') calls = setting;
  else if (latencyMs === null) calls = 1;
  else calls = Math.min(MAX_AUTO_CALLS_PER_ACTIVITY, Math.floor(RUN_TARGET_MS / Math.max(1, latencyMs)));
  const evenShare = Math.ceil(queued / Math.max(1, slots));
  return Math.max(1, Math.min(calls, evenShare));
}

/**
/** Whether leased capacity holds a start of `candidate`: one request and its tokens. */
export function leaseCovers(
  lease: { requests: number; inputTokens: number; outputTokens: number },
  candidate: DispatchCandidate,
): boolean {
  return (
    lease.requests >= 1 &&
    lease.inputTokens >= candidate.inputTokens &&
    lease.outputTokens >= candidate.outputTokens
  );
}

/**
 * May a request join the run being assembled at `now`: the run already holds a slot, so only
 * what stops any start applies (a pause, a refused key, an outage, a 429's hold, the budget).
 */
export function mayJoinRun(view: DispatchView, candidate: DispatchCandidate, now: number): boolean {
  return (
    !view.paused &&
    !view.credentialsRefused &&
    !view.outage &&
    !view.apiFailing &&
    !view.keyLease &&
    now >= view.holdUntil &&
    view.ledger.fits(candidate.maxCost)
  );
}
