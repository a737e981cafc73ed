import type { BatchStatus, ResultsRef } from './types';

/** Workflow type name other SDKs and the `temporal` CLI start. */
export const WORKFLOW_TYPE = 'maritacaBatch';
/** Task queue the worker listens on unless `TEMPORAL_TASK_QUEUE` says otherwise. */
export const DEFAULT_TASK_QUEUE = 'maritaca-batch';
/** Maritaca's API base URL. */
export const DEFAULT_MARITACA_BASE_URL = 'https://chat.maritaca.ai/api';
/** Concurrent calls per batch unless `maxConcurrency` says otherwise. */
export const DEFAULT_MAX_CONCURRENCY = 5;
/** Output tokens per request used for the estimate, and sent as `max_tokens`, unless set. */
export const DEFAULT_MAX_OUTPUT_TOKENS = 1000;
/** How long one Maritaca call may take before it is abandoned and retried. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 120_000;
/** Default retry policy of each call. */
export const DEFAULT_RETRY = {
  maximumAttempts: 20,
  initialIntervalMs: 1000,
  maximumIntervalMs: 60_000,
  backoffCoefficient: 2,
} as const;

/** Batches up to this size return their outcomes inline; larger ones keep them in the results store. */
export const INLINE_RESULTS_MAX = 1000;
/**
 * Answers a run of calls writes per object on S3, which cannot append: one write per answer costs
 * an object and a round trip each, a ten-fold cost for fast calls. A run also writes what it
 * holds whenever half a second has passed since its last write, so slow calls are written one by one.
 */
export const S3_RUN_ANSWERS_PER_OBJECT = 10;

/**
 * How many answered calls a run lost with its worker may have left unwritten after the last one
 * the store holds: none where the store appends each answer (a folder), fewer than
 * {@link S3_RUN_ANSWERS_PER_OBJECT} on S3. The workflow counts them as maybe billed and asks again.
 */
export function unwrittenRunAnswersAtMost(results: ResultsRef): number {
  return results.type === 'objects' && results.url.startsWith('s3://') ? S3_RUN_ANSWERS_PER_OBJECT - 1 : 0;
}

/** Default bound on the events of one run (`historyEventLimit`); the batch continues as new before it. */
export const DEFAULT_HISTORY_EVENT_LIMIT = 10_000;
/**
 * Bytes of history after which a run continues as new, whatever its event count: runs of calls
 * put many requests in one event, and a history stays readable by clients whose gRPC messages
 * are capped at 4 MB (the default) only below that.
 */
export const HISTORY_SIZE_LIMIT_BYTES = 2 * 1024 * 1024;

/** Statuses a batch never leaves: it has ended (or, for a closed run, how it ended). */
export const FINAL_STATUSES: readonly BatchStatus[] = [
  'completed',
  'rejected',
  'expired',
  'failed',
  'cancelled',
  'budget_exhausted',
];

/** Signal, query and update names: part of the public contract. */
export const MessageNames = {
  approve: 'approve',
  reject: 'reject',
  progress: 'progress',
  estimate: 'estimate',
  completions: 'completions',
  approveBudget: 'approveBudget',
  setConcurrency: 'setConcurrency',
  pause: 'pause',
  resume: 'resume',
} as const;

/**
 * Tokens an image is counted at in estimates and reservations, unless a batch sets
 * `imageTokenBound`. Maritaca does not publish how it counts images; this allows for a large
 * image (about 1,600 tokens for a megapixel in comparable vision APIs) with a margin.
 */
export const DEFAULT_IMAGE_TOKEN_BOUND = 2000;

/**
 * How often a running Maritaca call heartbeats, unless a batch sets `heartbeatInterval`. Each
 * heartbeat is a Temporal action; a cancel reaches a call at its next heartbeat, and a call
 * whose worker died is retried once 1.5 intervals pass without one.
 */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 20_000;

/**
 * How long a run of calls (several requests called one after another by one activity, with one
 * outcome each) should last when `callsPerActivity` is `auto`: long enough that the workflow
 * task and activity schedule of each run are shared by several calls, short enough that progress
 * and results arrive every few seconds and a lost worker resends little.
 */
export const RUN_TARGET_MS = 2_000;

/** Most calls one activity carries when `callsPerActivity` is `auto`. */
export const MAX_AUTO_CALLS_PER_ACTIVITY = 50;

/** Most calls one activity may carry when a batch sets `callsPerActivity`. */
export const MAX_CALLS_PER_ACTIVITY = 500;

/**
 * Failures of Maritaca itself (connection errors, timeouts, 5xx) in a row, across requests, after
 * which a batch holds all calls and probes the API instead (or half the window, when that is
 * more). A request with at least this many attempts cannot run out of them before the batch
 * notices the outage.
 */
export const API_FAILURES_TO_TRIP = 3;
/** First wait before probing an unavailable API, unless a batch sets `apiProbeInterval`. */
export const DEFAULT_API_PROBE_INTERVAL_MS = 5_000;
/** Longest wait between probes, unless a batch sets `apiProbeMaxInterval`. */
export const DEFAULT_API_PROBE_MAX_INTERVAL_MS = 120_000;
/** How long a batch waits out an outage before requests fail again (`apiOutageTimeout`): a day, like the providers' batch windows. */
export const DEFAULT_API_OUTAGE_TIMEOUT_MS = 24 * 60 * 60 * 1000;

/** Heartbeat timeout of a Maritaca call, as a multiple of its heartbeat interval. */
export const HEARTBEAT_TIMEOUT_FACTOR = 1.5;

/** Times an answer that does not match the requested JSON is asked again, unless a batch says otherwise. */
export const DEFAULT_STRUCTURED_OUTPUT_RETRIES = 2;

/** Temporal Cloud's list price per million actions (US$), unless a batch sets `temporalActionPrice`. */
export const DEFAULT_TEMPORAL_ACTION_PRICE_USD = 50;
