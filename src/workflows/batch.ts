import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  TimeoutFailure,
  condition,
  isCancellation,
  log,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import {
  DEFAULT_MAX_CONCURRENCY,
  DEFAULT_REQUEST_TIMEOUT_MS,
  ACTUAL_COST_KEY,
  BATCH_STATUS_KEY,
  DEFAULT_RETRY,
  ESTIMATED_COST_KEY,
  FailureTypes,
  REQUESTS_KEY,
  NON_RETRYABLE_FAILURE_TYPES,
  addCosts,
  adaptWindow,
  approveBudgetSchema,
  approveBudgetUpdate,
  approveSchema,
  approveSignal,
  batchInputSchema,
  completionsQuery,
  concurrencySchema,
  describeIssues,
  estimateInputOf,
  estimateQuery,
  parseDurationMs,
  pauseSignal,
  progressQuery,
  pruneWindow,
  publicEstimate,
  renderCurrentDetails,
  rateWaitMs,
  rejectSignal,
  resolveCalls,
  resumeSignal,
  setConcurrencyUpdate,
  validateWith,
  type ApprovalRecord,
  type BatchEstimate,
  type BatchInput,
  type BatchProgress,
  type BatchResult,
  type BatchStatus,
  type CallFailureDetails,
  type CallMaritacaInput,
  type RequestError,
  type RequestOutcome,
  type WaitingFor,
  type WindowEntry,
} from '../shared';

type Activities = ReturnType<typeof createActivities>;

/** Margin Temporal gives a call beyond its own HTTP timeout, so the activity reports the timeout itself. */
const ACTIVITY_TIMEOUT_MARGIN_MS = 15_000;
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
/** Amounts below this are rounding noise, not money. */
const COST_EPSILON = 1e-9;

/** Why the next request cannot start now, and how long that may last. */
interface Blocked {
  status: BatchStatus;
  waitingFor: WaitingFor;
  /** Re-check after this long even if nothing else changes (time-based blocks). */
  timeoutMs?: number;
}

/**
 * The durable batch: estimates the cost, waits for approval, then runs every request through a
 * sliding window of Maritaca calls that never spends beyond the approved budget, respects the
 * key's per-minute limits, backs off on 429s, and can be paused, resized or cancelled. Returns
 * one outcome per request in input order.
 *
 * Registered under the workflow type `maritacaBatch`; see the README for its signals, updates
 * and queries.
 */
export async function maritacaBatch(input: BatchInput): Promise<BatchResult> {
  const validated = validateWith(batchInputSchema, input);
  if (!validated.ok) {
    throw ApplicationFailure.create({
      type: FailureTypes.InvalidInput,
      message: `Invalid batch input: ${describeIssues(validated.issues)}`,
      nonRetryable: true,
      details: [validated.issues],
    });
  }
  const { requests } = validated.value;
  const options = validated.value.options ?? {};
  const total = requests.length;
  const requestTimeoutMs = parseDurationMs(options.requestTimeout) ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const approvalTimeoutMs = parseDurationMs(options.approvalTimeout);
  const maximumAttempts = options.retry?.maximumAttempts ?? DEFAULT_RETRY.maximumAttempts;
  const limits = options.rateLimit;
  const calls: CallMaritacaInput[] = resolveCalls(requests, options);

  const { estimateCost } = proxyActivities<Activities>({
    startToCloseTimeout: '5 minutes',
    retry: { maximumAttempts: 5 },
  });
  const callOptions: ActivityOptions = {
    startToCloseTimeout: requestTimeoutMs + ACTIVITY_TIMEOUT_MARGIN_MS,
    heartbeatTimeout: '10 seconds',
    // Cancelling the batch must abort the HTTP calls before it reports back, so nothing keeps running.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      maximumAttempts,
      initialInterval: parseDurationMs(options.retry?.initialInterval) ?? DEFAULT_RETRY.initialIntervalMs,
      maximumInterval: parseDurationMs(options.retry?.maximumInterval) ?? DEFAULT_RETRY.maximumIntervalMs,
      backoffCoefficient: options.retry?.backoffCoefficient ?? DEFAULT_RETRY.backoffCoefficient,
      // A 429 comes back to the workflow, which holds the whole window and narrows it.
      nonRetryableErrorTypes: [...NON_RETRYABLE_FAILURE_TYPES, FailureTypes.RateLimited],
    },
  };
  const { callMaritaca } = proxyActivities<Activities>(callOptions);
  const { postProgress } = proxyActivities<Activities>({
    startToCloseTimeout: '15 seconds',
    retry: { maximumAttempts: 3 },
  });
  const { searchAttributesReady } = proxyLocalActivities<Activities>({
    startToCloseTimeout: '10 seconds',
    retry: { maximumAttempts: 3 },
  });
  const progressUpdates = options.onProgress;
  const progressEveryMs = (progressUpdates?.everySeconds ?? 30) * 1000;

  const startedAt = workflowInfo().startTime.toISOString();
  const state = {
    status: 'estimating' as BatchStatus,
    waitingFor: null as WaitingFor,
    estimate: null as BatchEstimate | null,
    approvals: [] as ApprovalRecord[],
    /** An `approve` signal that arrived before the estimate was known. */
    earlyApproval: null as { budget?: number; approvedBy?: string } | null,
    rejected: false,
    rejectionReason: null as string | null,
    succeeded: 0,
    failed: 0,
    inFlight: 0,
    actualCost: 0,
    reserved: 0,
    maxConcurrency: options.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY,
    window: options.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY,
    paused: false,
    holdUntil: 0,
    rateLimitedResponses: 0,
    nextIndex: 0,
    updatedAt: startedAt,
    /** Bumped on every change, so the dispatch loop can wait for "anything happened". */
    version: 0,
    runningSince: null as number | null,
    detailsAt: 0,
    progressPostedAt: 0,
    progressPosting: false,
  };
  // Only upsert search attributes the namespace has: unknown ones would fail every workflow task.
  let searchAttributes = false;
  const outcomes: (RequestOutcome | null)[] = calls.map(() => null);
  // Indices in the order their requests finished, so clients can follow completions one by one.
  const completionOrder: number[] = [];
  // Requests sent back by a 429, to go before the ones never started.
  const retryQueue: number[] = [];
  // Attempts spent in earlier executions of a request (each 429 ends one).
  const priorAttempts: Record<string, number> = {};
  const reservations: Record<string, number> = {};
  const rateWindow: WindowEntry[] = [];
  let perRequestMaxCost: number[] = [];
  let perRequestInputTokens: number[] = [];
  let perRequestCost: number[] = [];
  // Suffix sums over input order: the cost of requests from index i on, for "the rest" figures.
  let restCostFrom: number[] = [];
  let restMaxCostFrom: number[] = [];

  const requestsPerMinute = (): number | null => {
    if (state.runningSince === null) return null;
    const minutes = (Date.now() - state.runningSince) / 60_000;
    return minutes > 0 ? (state.succeeded + state.failed) / minutes : 0;
  };
  const refreshDetails = (force: boolean): void => {
    const now = Date.now();
    // The UI reads details on demand; re-rendering them once a second is plenty.
    if (!force && now - state.detailsAt < 1000) return;
    state.detailsAt = now;
    setCurrentDetails(renderCurrentDetails(progress(), requestsPerMinute()));
  };
  const postProgressNow = (): void => {
    state.progressPosting = true;
    state.progressPostedAt = Date.now();
    postProgress({ ...(progressUpdates?.url ? { url: progressUpdates.url } : {}), progress: progress() })
      .catch((err: unknown) => log.warn('Progress update failed', { error: (err as Error).message }))
      .finally(() => {
        state.progressPosting = false;
      });
  };
  const maybePostProgress = (): void => {
    if (!progressUpdates || state.progressPosting) return;
    if (Date.now() - state.progressPostedAt >= progressEveryMs) postProgressNow();
  };
  const touch = (): void => {
    state.updatedAt = new Date().toISOString();
    state.version += 1;
    refreshDetails(false);
    maybePostProgress();
  };
  const upsertStatus = (): void => {
    if (!searchAttributes) return;
    upsertSearchAttributes([
      { key: BATCH_STATUS_KEY, value: state.status },
      { key: ACTUAL_COST_KEY, value: state.actualCost },
      ...(state.estimate ? [{ key: ESTIMATED_COST_KEY, value: state.estimate.totalCost }] : []),
    ]);
  };
  const setStatus = (status: BatchStatus, waitingFor: WaitingFor = null): void => {
    if (state.status === status && state.waitingFor === waitingFor) return;
    const statusChanged = state.status !== status;
    state.status = status;
    state.waitingFor = waitingFor;
    touch();
    if (statusChanged) upsertStatus();
    refreshDetails(true);
  };
  const approvedBudget = (): number | null => state.approvals.at(-1)?.budget ?? null;
  const rest = (of: number[], suffix: number[]): number =>
    retryQueue.reduce((sum, i) => sum + (of[i] ?? 0), suffix[state.nextIndex] ?? 0);
  const neededToFinish = (): number =>
    addCosts(addCosts(state.actualCost, state.reserved), rest(perRequestMaxCost, restMaxCostFrom));

  const progress = (): BatchProgress => {
    const approved = approvedBudget();
    return {
      status: state.status,
      total,
      completed: state.succeeded + state.failed,
      succeeded: state.succeeded,
      failed: state.failed,
      inFlight: state.inFlight,
      pending: total - state.succeeded - state.failed - state.inFlight,
      estimate: state.estimate,
      approvedBudget: approved,
      actualCost: state.actualCost,
      currency: 'BRL',
      startedAt,
      updatedAt: state.updatedAt,
      approval: state.approvals.at(-1) ?? null,
      rejectionReason: state.rejectionReason,
      approvals: state.approvals,
      waitingFor: state.waitingFor,
      budget:
        approved === null
          ? null
          : {
              approved,
              spent: state.actualCost,
              reserved: state.reserved,
              remaining: addCosts(approved, -addCosts(state.actualCost, state.reserved)),
              restEstimate: addCosts(0, rest(perRequestCost, restCostFrom)),
              restMaxCost: addCosts(0, rest(perRequestMaxCost, restMaxCostFrom)),
            },
      concurrency: { max: state.maxConcurrency, current: allowedInFlight() },
      paused: state.paused,
      rateLimitedResponses: state.rateLimitedResponses,
    };
  };
  const allowedInFlight = (): number => Math.max(1, Math.min(state.maxConcurrency, Math.floor(state.window)));

  const finish = (status: BatchStatus): BatchResult => {
    setStatus(status);
    return {
      status,
      results: outcomes.filter((o): o is RequestOutcome => o !== null),
      estimate: state.estimate,
      approvedBudget: approvedBudget(),
      actualCost: state.actualCost,
      currency: 'BRL',
      rejectionReason: state.rejectionReason,
      approvals: state.approvals,
    };
  };

  const recordApproval = (
    budget: number,
    via: ApprovalRecord['via'],
    approvedBy?: string,
  ): ApprovalRecord => {
    const record: ApprovalRecord = { budget, via, at: new Date().toISOString() };
    if (approvedBy !== undefined) record.approvedBy = approvedBy;
    state.approvals.push(record);
    touch();
    return record;
  };
  const waitingForApproval = (): boolean =>
    state.status === 'awaiting_approval' || state.status === 'awaiting_budget';

  setHandler(progressQuery, progress);
  setHandler(estimateQuery, () => state.estimate);
  setHandler(completionsQuery, ({ from, limit }) => {
    const start = Math.max(0, Math.floor(from));
    const end = Math.min(completionOrder.length, start + Math.max(1, Math.min(limit ?? 500, 5000)));
    const page = completionOrder.slice(start, end).map((index) => outcomes[index]!);
    return {
      total,
      completed: completionOrder.length,
      nextFrom: start + page.length,
      outcomes: page,
      status: state.status,
    };
  });

  setHandler(approveSignal, (payload) => {
    const parsed = validateWith(approveSchema, payload ?? {});
    if (!parsed.ok) {
      log.warn('Ignoring approve signal with invalid payload', { issues: describeIssues(parsed.issues) });
      return;
    }
    const { budget, approvedBy } = parsed.value;
    if (state.rejected) return;
    if (state.status === 'estimating') {
      state.earlyApproval = parsed.value;
      touch();
    } else if (state.status === 'awaiting_approval') {
      recordApproval(budget ?? state.estimate!.totalCost, 'signal', approvedBy);
    } else if (state.status === 'awaiting_budget') {
      const next = budget ?? neededToFinish();
      if (next <= (approvedBudget() ?? 0) + COST_EPSILON) {
        log.warn('Ignoring approve signal: the budget is not above the current one', { budget: next });
        return;
      }
      recordApproval(next, 'signal', approvedBy);
    } else {
      log.info('Ignoring approve signal: the batch is not waiting for approval', { status: state.status });
    }
  });
  setHandler(approveBudgetUpdate, ({ budget, approvedBy }) => recordApproval(budget, 'update', approvedBy), {
    validator: (arg) => {
      const parsed = validateWith(approveBudgetSchema, arg);
      if (!parsed.ok) throw new Error(describeIssues(parsed.issues));
      if (!waitingForApproval()) {
        throw new Error(`the batch is not waiting for approval (status: ${state.status})`);
      }
      const { budget } = parsed.value;
      if (budget + COST_EPSILON < state.actualCost) {
        throw new Error(`budget ${budget} BRL is below what was already spent (${state.actualCost} BRL)`);
      }
      const current = approvedBudget();
      if (state.status === 'awaiting_budget' && current !== null && budget <= current + COST_EPSILON) {
        throw new Error(
          `budget ${budget} BRL is not above the current budget (${current} BRL), so the batch could not go on`,
        );
      }
    },
  });
  setHandler(rejectSignal, (payload) => {
    if (state.status !== 'estimating' && !waitingForApproval()) {
      log.info('Ignoring reject signal: the batch is not waiting for approval', { status: state.status });
      return;
    }
    state.rejected = true;
    state.rejectionReason = payload?.reason ?? null;
    touch();
  });
  setHandler(pauseSignal, () => {
    state.paused = true;
    touch();
  });
  setHandler(resumeSignal, () => {
    state.paused = false;
    touch();
  });
  setHandler(
    setConcurrencyUpdate,
    (concurrency) => {
      state.maxConcurrency = concurrency;
      state.window = concurrency;
      touch();
      return concurrency;
    },
    {
      validator: (concurrency) => {
        const parsed = validateWith(concurrencySchema, concurrency, ['concurrency']);
        if (!parsed.ok) throw new Error(describeIssues(parsed.issues));
      },
    },
  );

  searchAttributes = await searchAttributesReady().catch(() => false);
  if (searchAttributes) {
    upsertSearchAttributes([
      { key: BATCH_STATUS_KEY, value: state.status },
      { key: REQUESTS_KEY, value: total },
    ]);
  }
  refreshDetails(true);

  try {
    return await runBatch();
  } finally {
    if (progressUpdates) {
      // The last word goes out whatever the throttle says, so watchers see how it ended.
      await CancellationScope.nonCancellable(async () => {
        await condition(() => !state.progressPosting);
        postProgressNow();
        await condition(() => !state.progressPosting);
      });
    }
  }

  async function runBatch(): Promise<BatchResult> {
    // --- Estimate -------------------------------------------------------------------------------
    const detailed = await estimateCost(estimateInputOf(requests, options));
    state.estimate = publicEstimate(detailed);
    perRequestMaxCost = detailed.perRequestMaxCost;
    perRequestInputTokens = detailed.perRequestInputTokens;
    perRequestCost = detailed.perRequestCost;
    restCostFrom = suffixSums(perRequestCost);
    restMaxCostFrom = suffixSums(perRequestMaxCost);
    touch();

    // --- Approval -------------------------------------------------------------------------------
    try {
      if (state.rejected) return finish('rejected');
      if (state.earlyApproval) {
        const { budget, approvedBy } = state.earlyApproval;
        recordApproval(budget ?? state.estimate.totalCost, 'signal', approvedBy);
      } else if (
        options.autoApproveBelow !== undefined &&
        state.estimate.totalCost < options.autoApproveBelow
      ) {
        recordApproval(options.autoApproveBelow, 'auto', 'autoApproveBelow');
      } else {
        setStatus('awaiting_approval', 'approval');
        const decided = () => state.rejected || state.approvals.length > 0;
        if (approvalTimeoutMs === undefined) await condition(decided);
        else if (!(await condition(decided, approvalTimeoutMs, { summary: 'approval timeout' }))) {
          return finish('expired');
        }
        if (state.rejected) return finish('rejected');
      }
    } catch (err) {
      if (isCancellation(err)) return finish('cancelled');
      throw err;
    }

    // --- Run ------------------------------------------------------------------------------------
    state.runningSince = Date.now();
    setStatus('running');
    // Every Maritaca call runs in this scope, so a fatal failure can cancel the ones still in flight.
    const callScope = new CancellationScope();
    let fatal: { index: number; error: RequestError; attempts: number } | null = null;
    let cancelled = false;

    const fitsBudget = (index: number): boolean =>
      addCosts(addCosts(state.actualCost, state.reserved), perRequestMaxCost[index] ?? 0) <=
      (approvedBudget() ?? 0) + COST_EPSILON;

    const blockedBy = (index: number): Blocked | null => {
      if (state.paused) return { status: 'paused', waitingFor: 'pause' };
      if (state.inFlight >= allowedInFlight()) return { status: 'running', waitingFor: null };
      const now = Date.now();
      if (now < state.holdUntil)
        return { status: 'running', waitingFor: 'retry_after', timeoutMs: state.holdUntil - now };
      if (limits) {
        pruneWindow(rateWindow, now);
        const wait = rateWaitMs(
          rateWindow,
          limits,
          now,
          perRequestInputTokens[index] ?? 0,
          calls[index]!.maxTokens,
        );
        if (wait > 0) return { status: 'running', waitingFor: 'rate_limit', timeoutMs: wait };
      }
      if (!fitsBudget(index)) {
        // With calls in flight, their real cost may free room; with none, only a person can.
        if (state.inFlight > 0) return { status: 'running', waitingFor: 'budget' };
        return {
          status: 'awaiting_budget',
          waitingFor: 'budget',
          ...(approvalTimeoutMs !== undefined ? { timeoutMs: approvalTimeoutMs } : {}),
        };
      }
      return null;
    };

    const runRequest = async (index: number): Promise<void> => {
      const call = calls[index]!;
      try {
        const output = await callScope.run(() =>
          callMaritaca.executeWithOptions({ ...callOptions, summary: `request ${call.requestId}` }, [call]),
        );
        outcomes[index] = {
          id: call.requestId,
          index,
          ok: true,
          result: output.result,
          attempts: output.attempt + (priorAttempts[index] ?? 0),
          cost: output.cost,
        };
        state.succeeded += 1;
        state.actualCost = addCosts(state.actualCost, output.cost);
        completionOrder.push(index);
        state.window = adaptWindow(state.window, state.maxConcurrency, 'success');
        // Count what the call really used against the minute, not what it might have used.
        const entry = rateWindow.find((e) => e.index === index);
        if (entry) {
          entry.inputTokens = output.result.llmOutput.tokenUsage.promptTokens;
          entry.outputTokens = output.result.llmOutput.tokenUsage.completionTokens;
        }
      } catch (err) {
        if (isCancellation(err) && (cancelled || fatal)) return;
        const { error, attempts, retryAfterMs } = describeCallFailure(err, maximumAttempts);
        const attemptsSoFar = attempts + (priorAttempts[index] ?? 0);
        if (error.type === FailureTypes.RateLimited) {
          state.rateLimitedResponses += 1;
          state.window = adaptWindow(state.window, state.maxConcurrency, 'rate_limited');
          state.holdUntil = Math.max(
            state.holdUntil,
            Date.now() + (retryAfterMs ?? DEFAULT_RATE_LIMIT_HOLD_MS),
          );
          if (attemptsSoFar < maximumAttempts) {
            priorAttempts[index] = attemptsSoFar;
            retryQueue.push(index);
            return;
          }
        }
        outcomes[index] = { id: call.requestId, index, ok: false, error, attempts: attemptsSoFar };
        state.failed += 1;
        completionOrder.push(index);
        if (!options.returnExceptions && !fatal) {
          fatal = { index, error, attempts: attemptsSoFar };
          callScope.cancel();
        }
      } finally {
        state.inFlight -= 1;
        state.reserved = addCosts(state.reserved, -(reservations[index] ?? 0));
        delete reservations[index];
        touch();
      }
    };

    const start = (index: number): void => {
      state.inFlight += 1;
      const reservation = perRequestMaxCost[index] ?? 0;
      reservations[index] = reservation;
      state.reserved = addCosts(state.reserved, reservation);
      if (limits) {
        rateWindow.push({
          index,
          at: Date.now(),
          inputTokens: perRequestInputTokens[index] ?? 0,
          outputTokens: calls[index]!.maxTokens,
        });
      }
      touch();
      void runRequest(index);
    };

    let endStatus: BatchStatus = 'completed';
    try {
      for (;;) {
        if (fatal) break;
        if (state.rejected && state.status === 'awaiting_budget') {
          endStatus = 'budget_exhausted';
          break;
        }
        const next =
          retryQueue.length > 0 ? retryQueue[0]! : state.nextIndex < total ? state.nextIndex : undefined;
        const seen = state.version;
        if (next === undefined) {
          if (state.inFlight === 0) break;
          await condition(() => state.version !== seen);
          continue;
        }
        const blocked = blockedBy(next);
        if (!blocked) {
          setStatus('running');
          if (retryQueue.length > 0) retryQueue.shift();
          else state.nextIndex += 1;
          start(next);
          continue;
        }
        setStatus(blocked.status, blocked.waitingFor);
        const changed = () => state.version !== seen;
        if (blocked.timeoutMs === undefined) {
          await condition(changed);
        } else if (
          !(await condition(changed, blocked.timeoutMs, {
            summary: TIMER_SUMMARY[blocked.waitingFor ?? 'budget'],
          })) &&
          blocked.status === 'awaiting_budget'
        ) {
          endStatus = 'budget_exhausted';
          break;
        }
      }
      await condition(() => state.inFlight === 0);
    } catch (err) {
      if (!isCancellation(err)) throw err;
      cancelled = true;
      // Wait, uncancellably, until every in-flight call has confirmed its cancellation.
      await CancellationScope.nonCancellable(() => condition(() => state.inFlight === 0));
      return finish('cancelled');
    }

    if (fatal !== null) {
      const { index, error, attempts } = fatal as { index: number; error: RequestError; attempts: number };
      const call = calls[index]!;
      setStatus('failed');
      throw ApplicationFailure.create({
        type: FailureTypes.RequestFailed,
        message:
          `Request "${call.requestId}" (index ${index}) failed after ${attempts} attempt(s): ` +
          `${error.type}${error.status ? ` (HTTP ${error.status})` : ''}: ${error.message}`,
        nonRetryable: true,
        details: [{ id: call.requestId, index, error, attempts }],
      });
    }
    return finish(endStatus);
  }
}

/** `sums[i]` = values[i] + ... + values[n-1]; `sums[n]` = 0. */
function suffixSums(values: readonly number[]): number[] {
  const sums = new Array<number>(values.length + 1).fill(0);
  for (let i = values.length - 1; i >= 0; i--) sums[i] = (sums[i + 1] ?? 0) + (values[i] ?? 0);
  return sums;
}

/** Turns an activity failure into the per-request error the batch reports. */
function describeCallFailure(
  err: unknown,
  maximumAttempts: number,
): { error: RequestError; attempts: number; retryAfterMs?: number } {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) {
    const details = (cause.details?.[0] ?? {}) as Partial<CallFailureDetails>;
    const error: RequestError = { type: cause.type ?? 'Error', message: cause.message };
    if (details.status !== undefined) error.status = details.status;
    const described: { error: RequestError; attempts: number; retryAfterMs?: number } = {
      error,
      attempts: details.attempt ?? maximumAttempts,
    };
    if (details.retryAfterMs !== undefined) described.retryAfterMs = details.retryAfterMs;
    return described;
  }
  if (cause instanceof TimeoutFailure) {
    return {
      error: { type: FailureTypes.Timeout, message: `Maritaca call timed out (${cause.timeoutType})` },
      attempts: maximumAttempts,
    };
  }
  const message = cause instanceof Error ? cause.message : String(cause);
  return { error: { type: 'Error', message }, attempts: maximumAttempts };
}
