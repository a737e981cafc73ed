import type { Logger, LogLevel, LogMetadata } from '@temporalio/common';
import { DefaultLogger, type ActivityInterceptorsFactory, type LogEntry } from '@temporalio/worker';
import { FailureTypes, RUN_CALL_FAILED_MESSAGE, type CallFailureDetails } from '../shared/failures';

/**
 * Failure types Maritaca produces in normal operation (rate limits, overloaded servers, dropped
 * connections): the retry policy or the workflow's hold deals with them, so they are news, not errors.
 */
const EXPECTED_FAILURE_TYPES: ReadonlySet<string> = new Set([
  FailureTypes.RateLimited,
  FailureTypes.ServerError,
  FailureTypes.ConnectionError,
]);

/** A Maritaca call that failed in a way the batch deals with by itself, as the worker logged it. */
export interface RetryableFailure {
  /** Id of the batch request (absent when the worker runs without the request-id interceptor). */
  requestId?: string;
  /** Temporal's id of the activity, a fallback name when `requestId` is absent. */
  activityId?: string;
  /** Id of the batch's workflow. */
  workflowId?: string;
  /** Which attempt of the activity failed (1 for the first). */
  attempt: number;
  /** The activity's attempt limit, when known. */
  maximumAttempts?: number;
  /** One of `MaritacaRateLimited`, `MaritacaServerError`, `MaritacaConnectionError`. */
  type: string;
  /** HTTP status Maritaca answered with, when it answered. */
  status?: number;
  /** The failure's message (never holds the API key: the activity scrubs it). */
  message: string;
  /** How long the batch waits before calling again, when the server said so (`Retry-After`). */
  retryInMs?: number;
  /** True when this was the last attempt: the request fails instead of being retried. */
  final: boolean;
}

/** Options of {@link createWorkerLogger}. */
export interface WorkerLoggerOptions {
  /**
   * Hears every retryable Maritaca failure (also the ones below the log level), e.g. to print
   * {@link describeRetryableFailure}'s one line. It runs inside the worker's logger: keep it quick.
   */
  onRetryableFailure?: (failure: RetryableFailure) => void;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** Reads a retryable Maritaca failure out of the SDK's "Activity failed" entry, or undefined for anything else. */
function retryableFailure(message: string, meta: LogMetadata | undefined): RetryableFailure | undefined {
  if ((message !== 'Activity failed' && message !== RUN_CALL_FAILED_MESSAGE) || !meta) return undefined;
  const error: unknown = meta.error;
  if (!isRecord(error) || typeof error.type !== 'string' || !EXPECTED_FAILURE_TYPES.has(error.type)) {
    return undefined;
  }
  if (error.nonRetryable === true) return undefined;
  const details = Array.isArray(error.details) && isRecord(error.details[0]) ? error.details[0] : {};
  const { status, retryAfterMs } = details as Partial<CallFailureDetails>;
  const attempt = typeof meta.attempt === 'number' ? meta.attempt : 1;
  const maximumAttempts =
    typeof meta.maximumAttempts === 'number' && meta.maximumAttempts > 0 ? meta.maximumAttempts : undefined;
  const nextRetryDelay = typeof error.nextRetryDelay === 'number' ? error.nextRetryDelay : undefined;
  const retryInMs = typeof retryAfterMs === 'number' ? retryAfterMs : nextRetryDelay;
  return {
    ...(typeof meta.requestId === 'string' ? { requestId: meta.requestId } : {}),
    ...(typeof meta.activityId === 'string' ? { activityId: meta.activityId } : {}),
    ...(typeof meta.workflowId === 'string' ? { workflowId: meta.workflowId } : {}),
    attempt,
    ...(maximumAttempts !== undefined ? { maximumAttempts } : {}),
    type: error.type,
    ...(typeof status === 'number' ? { status } : {}),
    message: typeof error.message === 'string' ? error.message : String(error.type),
    ...(retryInMs !== undefined ? { retryInMs } : {}),
    // A 429 is never retried by the activity's policy (the workflow holds the batch and calls
    // again itself), so its activity attempt says nothing about the request being given up.
    final:
      error.type !== FailureTypes.RateLimited && maximumAttempts !== undefined && attempt >= maximumAttempts,
  };
}

/**
 * One line for a retryable failure, such as `request pergunta-07: 429, retrying in 1 s` or
 * `request pergunta-12: HTTP 500, retrying (attempt 2)`.
 */
export function describeRetryableFailure(failure: RetryableFailure): string {
  const who = failure.requestId ? `request ${failure.requestId}` : `activity ${failure.activityId ?? '?'}`;
  let what: string;
  if (failure.type === FailureTypes.RateLimited) what = '429';
  else if (failure.status !== undefined) what = `HTTP ${failure.status}`;
  else if (failure.type === FailureTypes.ConnectionError) what = `no answer (${failure.message})`;
  else what = failure.message;
  if (failure.final) return `${who}: ${what}, giving up after ${failure.attempt} attempts`;
  if (failure.type === FailureTypes.RateLimited) {
    const seconds = Math.max(1, Math.round((failure.retryInMs ?? 1000) / 1000));
    return `${who}: ${what}, retrying in ${seconds} s`;
  }
  return `${who}: ${what}, retrying (attempt ${failure.attempt + 1})`;
}

/** The failure without its stack: type, message and what Maritaca said are all a reader needs. */
function summary(failure: RetryableFailure): Record<string, unknown> {
  return {
    type: failure.type,
    message: failure.message,
    ...(failure.status !== undefined ? { status: failure.status } : {}),
    ...(failure.retryInMs !== undefined ? { retryInMs: failure.retryInMs } : {}),
  };
}

class WorkerLogger implements Logger {
  constructor(
    private readonly inner: Logger,
    private readonly onRetryableFailure: ((failure: RetryableFailure) => void) | undefined,
  ) {}

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    // Entries the SDK already demoted (benign failures) stay as they are.
    const failure = level === 'WARN' || level === 'ERROR' ? retryableFailure(message, meta) : undefined;
    if (!failure) {
      this.inner.log(level, message, meta);
      return;
    }
    try {
      this.onRetryableFailure?.(failure);
    } catch {
      // A listener's bug must not cost the worker its log line.
    }
    // The last attempt is a request that fails for good: worth a warning, still not a stack.
    this.inner.log(failure.final ? 'WARN' : 'DEBUG', message, { ...meta, error: summary(failure) });
  }

  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }

  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }

  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }

  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }

  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}

/**
 * A Temporal Runtime logger for batch workers: like `DefaultLogger(level, write)`, except that an
 * activity failing with a retryable Maritaca failure (429, 5xx, no connection) is logged at DEBUG
 * without its stack trace, since retries and `Retry-After` holds are how a batch normally runs.
 * The last attempt of a request stays a WARN (without the stack); any other failure (a refused
 * request, a bad key, an unknown error) keeps its level and stack.
 *
 * @example
 * Runtime.install({
 *   logger: createWorkerLogger('INFO', undefined, {
 *     onRetryableFailure: (f) => console.log(describeRetryableFailure(f)),
 *   }),
 * });
 */
export function createWorkerLogger(
  level: LogLevel = 'INFO',
  write?: (entry: LogEntry) => void,
  options: WorkerLoggerOptions = {},
): Logger {
  return new WorkerLogger(new DefaultLogger(level, write), options.onRetryableFailure);
}

/**
 * Activity interceptor that adds the batch request's id (`requestId`) and the attempt limit
 * (`maximumAttempts`) to the activity's log entries, so {@link createWorkerLogger} can name the
 * request and tell a retry from the last attempt.
 */
export const requestLogAttributes: ActivityInterceptorsFactory = (ctx) => {
  let requestId: string | undefined;
  // When the workflow schedules each attempt itself, the request's own count is in the input:
  // the activity's attempt (always 1 then) would call every failure the last.
  let requestAttempt: { number: number; of: number } | undefined;
  let isRun = false;
  const maximumAttempts = ctx.info.retryPolicy?.maximumAttempts;
  return {
    inbound: {
      execute(input, next) {
        const first = input.args[0];
        // A run of calls logs each call's request, attempt and limit itself.
        if (isRecord(first) && Array.isArray(first.calls)) {
          isRun = true;
          return next(input);
        }
        if (isRecord(first) && typeof first.requestId === 'string') requestId = first.requestId;
        if (isRecord(first) && isRecord(first.requestAttempt)) {
          const { number, of } = first.requestAttempt;
          if (typeof number === 'number' && typeof of === 'number') requestAttempt = { number, of };
        }
        return next(input);
      },
    },
    outbound: {
      getLogAttributes(attributes, next) {
        if (isRun) return next(attributes);
        return next({
          ...attributes,
          ...(requestId !== undefined ? { requestId } : {}),
          ...(requestAttempt
            ? { attempt: requestAttempt.number, maximumAttempts: requestAttempt.of }
            : maximumAttempts
              ? { maximumAttempts }
              : {}),
        });
      },
    },
  };
};
