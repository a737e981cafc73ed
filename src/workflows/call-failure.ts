import { ActivityFailure, ApplicationFailure, TimeoutFailure } from '@temporalio/workflow';
import {
  FailureTypes,
  NON_RETRYABLE_FAILURE_TYPES,
  type CallFailureDetails,
  type RequestError,
  type RunCallFailure,
} from '../shared';

/** A failed call as the batch reports it: the error, the attempts it took, and any Retry-After. */
export interface DescribedFailure {
  error: RequestError;
  attempts: number;
  /** From a 429's `Retry-After`: how long the whole batch should hold back. */
  retryAfterMs?: number;
  /** Another attempt may succeed (not a refusal of the request itself). */
  retryable: boolean;
  /** `unknown` when Maritaca may have billed the call although no answer came back. */
  billing?: 'unknown';
  /** What Maritaca billed for an answer that came back but did not match its schema. */
  billedCost?: number;
  /** Heartbeats the call sent before it failed. */
  heartbeats?: number;
  /** Says nothing about Maritaca's health (see `JudgedFailure.healthNeutral`). */
  healthNeutral?: boolean;
}

/**
 * Turns what a `callMaritaca` activity failed with into the per-request error the batch reports.
 * The activity's own `ApplicationFailure` carries the HTTP status, the attempt and Retry-After;
 * a Temporal-side timeout means the call never reported back, after every attempt.
 */
export function describeCallFailure(err: unknown, maximumAttempts: number): DescribedFailure {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) {
    return describeRunFailure(
      {
        type: cause.type ?? 'Error',
        message: cause.message,
        nonRetryable: cause.nonRetryable ?? false,
        details: (cause.details?.[0] ?? {}) as CallFailureDetails,
      },
      maximumAttempts,
    );
  }
  if (cause instanceof TimeoutFailure) {
    // The worker never reported back (it died, or the call hung): the call may have been billed.
    return {
      error: { type: FailureTypes.Timeout, message: `Maritaca call timed out (${cause.timeoutType})` },
      attempts: maximumAttempts,
      retryable: true,
      billing: 'unknown',
    };
  }
  const message = cause instanceof Error ? cause.message : String(cause);
  return {
    error: { type: 'Error', message },
    attempts: maximumAttempts,
    retryable: true,
    billing: 'unknown',
  };
}

/** The per-request error of a call that failed inside a run (or of a `callMaritaca` failure, as data). */
export function describeRunFailure(failure: RunCallFailure, maximumAttempts: number): DescribedFailure {
  const details: Partial<CallFailureDetails> = failure.details ?? {};
  const error: RequestError = { type: failure.type, message: failure.message };
  if (details.status !== undefined) error.status = details.status;
  const described: DescribedFailure = {
    error,
    attempts: details.attempt ?? maximumAttempts,
    retryable: !failure.nonRetryable && !NON_RETRYABLE_FAILURE_TYPES.includes(error.type),
  };
  if (details.retryAfterMs !== undefined) described.retryAfterMs = details.retryAfterMs;
  if (details.billing === 'unknown') described.billing = 'unknown';
  if (details.billedCost !== undefined) described.billedCost = details.billedCost;
  if (details.heartbeats) described.heartbeats = details.heartbeats;
  return described;
}

/** Why the batch failed, in one line: an activity's failure names its cause too. */
export function describeWorkflowError(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return `${err.message}: ${err.cause.message}`;
  return err instanceof Error ? err.message : String(err);
}
