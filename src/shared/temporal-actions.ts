import { INLINE_RESULTS_MAX } from './constants';

/** Temporal actions of a batch and what Temporal Cloud would bill for them, in US$. */
export interface TemporalActions {
  /** Actions by kind: `workflow_started`, `activity_scheduled`, `activity_retry`, `timer`, `signal`, `update`, `search_attributes`, `local_activity`, `heartbeat`. */
  byType: Record<string, number>;
  total: number;
  /** US$ per million actions the cost is computed at. */
  usdPerMillion: number;
  costUsd: number;
}

/** Actions a batch takes whatever its size: start, estimate, approval, details upserts, markers. */
const FIXED_ACTIONS = {
  workflow_started: 1,
  activity_scheduled: 3, // the estimate, the results location and the key-limit lease
  signal: 1, // the approval
  search_attributes: 5,
  local_activity: 1,
} as const;

/** Requests a run handles before it continues as new (the scale runs: 10,000 requests took 8 runs, 100,000 took 74). */
const REQUESTS_PER_RUN = 1_350;
/** Requests per page: each page is loaded, and (when stored) compacted, by one activity. */
const PAGE = 500;

/**
 * The actions a batch of `requests` is expected to take when every call answers within one
 * heartbeat interval and nothing fails: one activity per request, two per page of a large batch,
 * one run per few thousand requests, and the fixed ones. A call that runs longer adds a heartbeat
 * per interval; a retry adds an activity. Calls faster than about two seconds share activities
 * (runs of calls, `callsPerActivity`), so for them this is an upper bound.
 */
export function expectedTemporalActions(requests: number, usdPerMillion: number): TemporalActions {
  const pages = Math.ceil(requests / PAGE);
  const byType: Record<string, number> = {
    ...FIXED_ACTIONS,
    workflow_started: Math.max(1, Math.ceil(requests / REQUESTS_PER_RUN)),
    activity_scheduled:
      FIXED_ACTIONS.activity_scheduled + requests + pages * (requests > INLINE_RESULTS_MAX ? 2 : 1),
  };
  return withCost(byType, usdPerMillion);
}

/** Totals `byType` and prices it. */
export function withCost(byType: Record<string, number>, usdPerMillion: number): TemporalActions {
  const total = Object.values(byType).reduce((a, b) => a + b, 0);
  return { byType, total, usdPerMillion, costUsd: Math.round(((total * usdPerMillion) / 1e6) * 1e6) / 1e6 };
}
