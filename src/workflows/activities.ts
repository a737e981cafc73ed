import {
  ActivityCancellationType,
  proxyActivities,
  proxyLocalActivities,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import {
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  HEARTBEAT_TIMEOUT_FACTOR,
  DEFAULT_RETRY,
  FailureTypes,
  NON_RETRYABLE_FAILURE_TYPES,
  parseDurationMs,
  type BatchOptions,
} from '../shared';

/** The activities as the workflow sees them (types only: no activity code enters the sandbox). */
export type Activities = ReturnType<typeof createActivities>;

/** Margin Temporal gives a call beyond its own HTTP timeout, so the activity reports the timeout itself. */
const ACTIVITY_TIMEOUT_MARGIN_MS = 15_000;

/** The options of each Maritaca call, from the batch options. */
export function callOptionsOf(options: BatchOptions): ActivityOptions {
  const retry = options.retry;
  return {
    startToCloseTimeout:
      (parseDurationMs(options.requestTimeout) ?? DEFAULT_REQUEST_TIMEOUT_MS) + ACTIVITY_TIMEOUT_MARGIN_MS,
    // The call heartbeats every interval (it reads the interval back from this timeout).
    heartbeatTimeout:
      (parseDurationMs(options.heartbeatInterval) ?? DEFAULT_HEARTBEAT_INTERVAL_MS) *
      HEARTBEAT_TIMEOUT_FACTOR,
    // Cancelling the batch must abort the HTTP calls before it reports back, so nothing keeps running.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      maximumAttempts: retry?.maximumAttempts ?? DEFAULT_RETRY.maximumAttempts,
      initialInterval: parseDurationMs(retry?.initialInterval) ?? DEFAULT_RETRY.initialIntervalMs,
      maximumInterval: parseDurationMs(retry?.maximumInterval) ?? DEFAULT_RETRY.maximumIntervalMs,
      backoffCoefficient: retry?.backoffCoefficient ?? DEFAULT_RETRY.backoffCoefficient,
      // A 429 comes back to the workflow, which holds the whole window and narrows it.
      nonRetryableErrorTypes: [...NON_RETRYABLE_FAILURE_TYPES, FailureTypes.RateLimited],
    },
  };
}

/**
 * The options of an activity calling `calls` requests one after another: each call may take the
 * whole of its own timeout, one after the other.
 */
export function runOptionsOf(callOptions: ActivityOptions, calls: number): ActivityOptions {
  const perCall = Number(callOptions.startToCloseTimeout) - ACTIVITY_TIMEOUT_MARGIN_MS;
  return { ...callOptions, startToCloseTimeout: perCall * calls + ACTIVITY_TIMEOUT_MARGIN_MS };
}

/** Every activity the batch schedules, each with the options its kind of work needs. */
export function batchActivities(options: BatchOptions) {
  // Store work is short and reports no heartbeat: a worker that dies in it is found out by the
  // timeout, which must stay short. The estimate reads the whole source, so it heartbeats instead.
  const store = proxyActivities<Activities>({
    startToCloseTimeout: '30 seconds',
    retry: { maximumAttempts: 5 },
  });
  const { estimateCost } = proxyActivities<Activities>({
    startToCloseTimeout: '30 minutes',
    heartbeatTimeout: '30 seconds',
    retry: { maximumAttempts: 5 },
  });
  const callOptions = callOptionsOf(options);
  const { callMaritaca, callMaritacaRun } = proxyActivities<Activities>(callOptions);
  // The limiter answers within its bounded wait (10 s), with a zero grant if it must.
  const { leaseKeyCapacity } = proxyActivities<Activities>({
    startToCloseTimeout: '45 seconds',
    retry: { maximumAttempts: 5 },
  });
  const { postProgress } = proxyActivities<Activities>({
    startToCloseTimeout: '15 seconds',
    retry: { maximumAttempts: 3 },
  });
  const { searchAttributesReady } = proxyLocalActivities<Activities>({
    startToCloseTimeout: '10 seconds',
    retry: { maximumAttempts: 3 },
  });
  return {
    loadPage: store.loadPage,
    resultsRef: store.resultsRef,
    appendOutcomes: store.appendOutcomes,
    answeredInStore: store.answeredInStore,
    compactOutcomes: store.compactOutcomes,
    estimateCost,
    callMaritaca,
    callMaritacaRun,
    leaseKeyCapacity,
    callOptions,
    postProgress,
    searchAttributesReady,
  };
}

/** What {@link batchActivities} returns. */
export type BatchActivities = ReturnType<typeof batchActivities>;
