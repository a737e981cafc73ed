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
  setHandler,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import {
  DEFAULT_MAX_CONCURRENCY,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_RETRY,
  FailureTypes,
  NON_RETRYABLE_FAILURE_TYPES,
  addCosts,
  approveSignal,
  approveSchema,
  completionsQuery,
  batchInputSchema,
  describeIssues,
  estimateQuery,
  estimateInputOf,
  parseDurationMs,
  resolveCalls,
  progressQuery,
  rejectSignal,
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
} from '../shared';

type Activities = ReturnType<typeof createActivities>;

/** Margin Temporal gives a call beyond its own HTTP timeout, so the activity reports the timeout itself. */
const ACTIVITY_TIMEOUT_MARGIN_MS = 15_000;

/**
 * The durable batch: estimates the cost, waits for approval, runs every request through a
 * sliding window of at most `maxConcurrency` Maritaca calls, and returns one outcome per
 * request in input order.
 *
 * Registered under the workflow type `maritacaBatch`; see the README for its signals
 * (`approve`, `reject`) and queries (`progress`, `estimate`).
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
  const maxConcurrency = options.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY;
  const requestTimeoutMs = parseDurationMs(options.requestTimeout) ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const maximumAttempts = options.retry?.maximumAttempts ?? DEFAULT_RETRY.maximumAttempts;

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
      nonRetryableErrorTypes: [...NON_RETRYABLE_FAILURE_TYPES],
    },
  };
  const { callMaritaca } = proxyActivities<Activities>(callOptions);

  const state = {
    status: 'estimating' as BatchStatus,
    estimate: null as BatchEstimate | null,
    approval: null as ApprovalRecord | null,
    pendingApproval: null as { budget?: number; approvedBy?: string } | null,
    rejectionReason: null as string | null,
    rejected: false,
    succeeded: 0,
    failed: 0,
    inFlight: 0,
    actualCost: 0,
    startedAt: workflowInfo().startTime.toISOString(),
    updatedAt: workflowInfo().startTime.toISOString(),
  };
  const outcomes: (RequestOutcome | null)[] = calls.map(() => null);
  // Indices in the order their requests finished, so clients can follow completions one by one.
  const completionOrder: number[] = [];

  const touch = (): void => {
    state.updatedAt = new Date().toISOString();
  };
  const setStatus = (status: BatchStatus): void => {
    state.status = status;
    touch();
  };
  const progress = (): BatchProgress => ({
    status: state.status,
    total,
    completed: state.succeeded + state.failed,
    succeeded: state.succeeded,
    failed: state.failed,
    inFlight: state.inFlight,
    pending: total - state.succeeded - state.failed - state.inFlight,
    estimate: state.estimate,
    approvedBudget: state.approval?.budget ?? null,
    actualCost: state.actualCost,
    currency: 'BRL',
    startedAt: state.startedAt,
    updatedAt: state.updatedAt,
    approval: state.approval,
    rejectionReason: state.rejectionReason,
  });
  const finish = (status: BatchStatus): BatchResult => {
    setStatus(status);
    return {
      status,
      results: outcomes.filter((o): o is RequestOutcome => o !== null),
      estimate: state.estimate,
      approvedBudget: state.approval?.budget ?? null,
      actualCost: state.actualCost,
      currency: 'BRL',
      rejectionReason: state.rejectionReason,
    };
  };

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
    if (state.approval || state.rejected) {
      log.info('Ignoring approve signal: the batch is already decided', { status: state.status });
      return;
    }
    state.pendingApproval = parsed.value;
    touch();
  });
  setHandler(rejectSignal, (payload) => {
    if (state.approval) {
      log.info('Ignoring reject signal: the batch is already approved', { status: state.status });
      return;
    }
    state.rejected = true;
    state.rejectionReason = payload?.reason ?? null;
    touch();
  });

  const estimate = await estimateCost(estimateInputOf(requests, options));
  state.estimate = {
    totalRequests: estimate.totalRequests,
    totalInputTokens: estimate.totalInputTokens,
    totalOutputTokens: estimate.totalOutputTokens,
    inputCost: estimate.inputCost,
    outputCost: estimate.outputCost,
    totalCost: estimate.totalCost,
    currency: 'BRL',
    model: estimate.model,
  };
  touch();

  const recordApproval = (budget: number, via: ApprovalRecord['via'], approvedBy?: string): void => {
    state.approval = { budget, via, at: new Date().toISOString(), ...defined('approvedBy', approvedBy) };
  };
  if (
    !state.rejected &&
    options.autoApproveBelow !== undefined &&
    estimate.totalCost < options.autoApproveBelow
  ) {
    recordApproval(options.autoApproveBelow, 'auto', 'autoApproveBelow');
  } else {
    setStatus('awaiting_approval');
    const decided = () => state.rejected || state.pendingApproval !== null;
    const approvalTimeoutMs = parseDurationMs(options.approvalTimeout);
    try {
      if (approvalTimeoutMs === undefined) {
        await condition(decided);
      } else if (!(await condition(decided, approvalTimeoutMs))) {
        return finish('expired');
      }
    } catch (err) {
      if (isCancellation(err)) return finish('cancelled');
      throw err;
    }
    if (state.rejected) return finish('rejected');
    const approved = state.pendingApproval ?? {};
    recordApproval(approved.budget ?? estimate.totalCost, 'signal', approved.approvedBy);
  }

  setStatus('running');
  // Every Maritaca call runs in this scope, so a fatal failure can cancel the ones still in flight.
  const callScope = new CancellationScope();
  let fatal: { index: number; error: RequestError; attempts: number } | null = null;
  let cancelled = false;

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
        attempts: output.attempt,
        cost: output.cost,
      };
      state.succeeded += 1;
      state.actualCost = addCosts(state.actualCost, output.cost);
      completionOrder.push(index);
    } catch (err) {
      if (isCancellation(err) && (cancelled || fatal)) return;
      const { error, attempts } = describeCallFailure(err, maximumAttempts);
      outcomes[index] = { id: call.requestId, index, ok: false, error, attempts };
      state.failed += 1;
      completionOrder.push(index);
      if (!options.returnExceptions && !fatal) {
        fatal = { index, error, attempts };
        callScope.cancel();
      }
    } finally {
      state.inFlight -= 1;
      touch();
    }
  };

  let nextIndex = 0;
  try {
    while (nextIndex < total && !fatal) {
      await condition(() => state.inFlight < maxConcurrency || fatal !== null);
      if (fatal) break;
      const index = nextIndex++;
      state.inFlight += 1;
      touch();
      void runRequest(index);
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
  return finish('completed');
}

/** Turns an activity failure into the per-request error the batch reports. */
function describeCallFailure(
  err: unknown,
  maximumAttempts: number,
): { error: RequestError; attempts: number } {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) {
    const details = (cause.details?.[0] ?? {}) as Partial<CallFailureDetails>;
    return {
      error: {
        type: cause.type ?? 'Error',
        message: cause.message,
        ...defined('status', details.status),
      },
      attempts: details.attempt ?? maximumAttempts,
    };
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

/** `{ [key]: value }` when value is defined, `{}` otherwise: keeps `undefined` out of payloads. */
function defined<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return value === undefined ? {} : ({ [key]: value } as { [P in K]?: V });
}
