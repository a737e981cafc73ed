import {
  ApplicationFailure,
  ContinueAsNew,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  patched,
  setCurrentDetails,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import {
  BatchState,
  DEFAULT_HISTORY_EVENT_LIMIT,
  DEFAULT_MAX_CONCURRENCY,
  API_FAILURES_TO_TRIP,
  DEFAULT_API_OUTAGE_TIMEOUT_MS,
  DEFAULT_API_PROBE_INTERVAL_MS,
  DEFAULT_API_PROBE_MAX_INTERVAL_MS,
  DEFAULT_RETRY,
  FailureTypes,
  INLINE_RESULTS_MAX,
  batchInputSchema,
  describeIssues,
  markdownText,
  parseDurationMs,
  validateWith,
  type BatchInput,
  type BatchOptions,
  type FailureRules,
  type BatchResult,
  type BatchStatus,
  type ResultsRef,
} from '../shared';
import { batchActivities, type BatchActivities } from './activities';
import { awaitApproval } from './approval';
import { describeWorkflowError } from './call-failure';
import { Dispatcher, type FatalFailure } from './dispatch';
import { registerHandlers } from './handlers';
import { OutcomeBook } from './outcomes';
import { PageQueue } from './pages';
import { Reporter } from './reporting';

/** Patch id: finished pages of stored outcomes are folded into one object each (earlier versions did not). */
const COMPACT_PAGES_PATCH = 'compact-result-pages';
/** Runs started before this patch let Temporal retry calls inside one activity; later ones retry in the workflow. */
const WORKFLOW_RETRIES_PATCH = 'workflow-side-retries';
/** Several requests may share one `callMaritacaRun` activity (runs of calls). */
const CALL_RUNS_PATCH = 'call-runs';
/** Outages hold the batch and probe, refused keys pause it, 429s cut the window once per round trip. */
const API_HEALTH_PATCH = 'api-health';
/** Starts are leased from the key's limiter when workers declare the key's limits. */
const KEY_LEASES_PATCH = 'key-leases';

/**
 * The durable batch: estimates the cost, waits for approval, then runs every request through a
 * sliding window of Maritaca calls that never spends beyond the approved budget, respects the
 * key's per-minute limits, backs off on 429s, and can be paused, resized or cancelled. Returns
 * one outcome per request in input order.
 *
 * This file reads as the data path; what may start when is decided by the pure policy in
 * `shared/dispatch-policy.ts`, and the state that crosses continue-as-new is owned by
 * `shared/batch-state.ts`. Registered under the workflow type `maritacaBatch`; see the README for
 * its signals, updates and queries.
 */
export async function maritacaBatch(input: BatchInput): Promise<BatchResult> {
  const validated = validateWith(batchInputSchema, input);
  if (!validated.ok) {
    const message = `Invalid batch input: ${describeIssues(validated.issues)}`;
    // Not a command: the UI shows why the batch failed instead of blank details.
    setCurrentDetails(`**Status:** failed\n\n**Failed:** ${markdownText(message)}`);
    throw ApplicationFailure.create({
      type: FailureTypes.InvalidInput,
      message,
      nonRetryable: true,
      details: [validated.issues],
    });
  }
  const { requests, source, resume } = validated.value;
  const options = validated.value.options ?? {};
  const total = resume ? resume.estimate!.totalRequests : requests ? requests.length : (source?.count ?? 0);
  const activities = batchActivities(options);

  const state = new BatchState(
    {
      maxConcurrency: options.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY,
      startedAt: workflowInfo().startTime.toISOString(),
      now: () => Date.now(),
    },
    resume,
  );
  const reporter = new Reporter(state, total, activities, options.onProgress);
  state.listen(() => reporter.onChange());
  // Large batches (and every continued run) keep outcomes in the results store, off the history.
  const book = new OutcomeBook(resume !== undefined || total > INLINE_RESULTS_MAX, total);
  registerHandlers(state, reporter, book, total);
  await reporter.start();

  const run: BatchRun = { input: { ...validated.value, options }, total, state, reporter, book, activities };
  try {
    const result = await runBatch(run);
    reporter.renderFinal(state.view.status, book.lastError());
    return result;
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    const status: BatchStatus = isCancellation(err) ? 'cancelled' : 'failed';
    reporter.renderFinal(status, status === 'failed' ? describeWorkflowError(err) : book.lastError());
    throw err;
  } finally {
    await reporter.postFinal();
  }
}

/** What one run of a batch works with. */
interface BatchRun {
  input: BatchInput & { options: NonNullable<BatchInput['options']> };
  total: number;
  state: BatchState;
  reporter: Reporter;
  book: OutcomeBook;
  activities: BatchActivities;
}

/** Estimate, approval, the dispatch loop, then the end: a result, a failure, or the next run. */
async function runBatch(run: BatchRun): Promise<BatchResult> {
  const { input, state, reporter, book, activities } = run;
  const { options } = input;
  const approvalTimeoutMs = parseDurationMs(options.approvalTimeout);
  if (!input.resume) {
    const { count: _count, ...estimate } = await activities.estimateCost({
      ...(input.requests ? { requests: input.requests } : {}),
      ...(input.source ? { source: input.source } : {}),
      options,
    });
    state.setEstimate(estimate);
    const approval = await awaitApproval(state, reporter, options, approvalTimeoutMs);
    if (approval !== 'approved') return finish(run, approval);
  }

  if (book.stored && !state.view.results)
    state.setResults(await activities.resultsRef(workflowInfo().workflowId));
  const compactPages = patched(COMPACT_PAGES_PATCH);
  const workflowRetries = patched(WORKFLOW_RETRIES_PATCH);
  // Runs need the workflow to own retries (each call of a run is one attempt).
  const callRuns = workflowRetries && patched(CALL_RUNS_PATCH);
  const apiHealth = callRuns && patched(API_HEALTH_PATCH);
  const keyLeases = apiHealth && patched(KEY_LEASES_PATCH);
  // Calls of a run write their answers to the store even in an inline batch: if the run's worker
  // dies, what the store holds tells the answered calls from the ones never made.
  if (callRuns && !state.view.results)
    state.setResults(await activities.resultsRef(workflowInfo().workflowId));
  state.markRunning();
  reporter.setStatus('running');
  const pages = new PageQueue(state, activities, input, run.total);
  const end = await new Dispatcher({
    state,
    reporter,
    pages,
    book,
    activities: workflowRetries
      ? { ...activities, callOptions: singleAttempt(activities.callOptions) }
      : activities,
    options,
    workflowRetries,
    callRuns,
    keyLeases,
    ...(apiHealth ? { apiHealth: apiHealthRules(options) } : {}),
    queued: () => run.total - state.view.nextIndex + state.view.retryQueue.length,
    retryDelayMs: retryDelayOf(options),
    maximumAttempts: options.retry?.maximumAttempts ?? DEFAULT_RETRY.maximumAttempts,
    historyEventLimit: options.historyEventLimit ?? DEFAULT_HISTORY_EVENT_LIMIT,
    approvalTimeoutMs,
    compactPages,
  }).run();

  switch (end.kind) {
    case 'cancelled':
      return finish(run, 'cancelled');
    case 'done':
      return finish(run, end.status);
    case 'fatal':
      reporter.setStatus('failed');
      throw requestFailed(end.failure, book.stored ? state.view.results : null);
    case 'continue':
      return continueInNewRun(run, pages, compactPages);
  }
}

/** The same call options with one attempt per activity: the workflow schedules the next one itself. */
function singleAttempt(callOptions: ActivityOptions): ActivityOptions {
  return { ...callOptions, retry: { ...callOptions.retry, maximumAttempts: 1 } };
}

/** How the batch waits out outages, from its options. */
function apiHealthRules(options: BatchOptions): NonNullable<FailureRules['apiHealth']> {
  return {
    // With fewer attempts than this, a request may fail on Maritaca's failures before the streak
    // declares an outage: the retry policy asked for no more tries.
    failuresToTrip: API_FAILURES_TO_TRIP,
    probeIntervalMs: parseDurationMs(options.apiProbeInterval) ?? DEFAULT_API_PROBE_INTERVAL_MS,
    probeMaxIntervalMs: parseDurationMs(options.apiProbeMaxInterval) ?? DEFAULT_API_PROBE_MAX_INTERVAL_MS,
    outageTimeoutMs: parseDurationMs(options.apiOutageTimeout) ?? DEFAULT_API_OUTAGE_TIMEOUT_MS,
  };
}

/** Wait before a request's Nth retry: the batch's retry policy, as Temporal would apply it. */
function retryDelayOf(options: BatchOptions): (retry: number) => number {
  const initial = parseDurationMs(options.retry?.initialInterval) ?? DEFAULT_RETRY.initialIntervalMs;
  const maximum = parseDurationMs(options.retry?.maximumInterval) ?? DEFAULT_RETRY.maximumIntervalMs;
  const coefficient = options.retry?.backoffCoefficient ?? DEFAULT_RETRY.backoffCoefficient;
  return (retry) => Math.min(maximum, initial * coefficient ** Math.max(0, retry - 1));
}

/** Ends the batch with `status` and its result. */
function finish({ state, reporter, book, total }: BatchRun, status: BatchStatus): BatchResult {
  reporter.setStatus(status);
  const s = state.view;
  return {
    status,
    results: book.stored ? [] : book.all(),
    estimate: s.estimate,
    approvedBudget: state.ledger.approved,
    actualCost: s.actualCost,
    currency: 'BRL',
    rejectionReason: s.rejectionReason,
    approvals: s.approvals,
    ...(book.stored && s.results ? { resultsRef: s.results } : {}),
    runs: s.run,
    counts: { total, succeeded: s.succeeded, failed: s.failed },
    ...(state.unconfirmedCost > 0 ? { unconfirmedCost: state.unconfirmedCost } : {}),
    ...(s.heartbeats > 0 ? { heartbeats: s.heartbeats } : {}),
    ...(Object.keys(s.templateOverheads).length > 0 ? { templateOverhead: state.learnedOverhead() } : {}),
  };
}

/** The failure that fails the batch when a request exhausted its retries and `returnExceptions` is false. */
function requestFailed(failure: FatalFailure, results: ResultsRef | null): ApplicationFailure {
  const { id, index, error, attempts } = failure;
  return ApplicationFailure.create({
    type: FailureTypes.RequestFailed,
    message:
      `Request "${id}" (index ${index}) failed after ${attempts} attempt(s): ` +
      `${error.type}${error.status ? ` (HTTP ${error.status})` : ''}: ${error.message}`,
    nonRetryable: true,
    details: [{ id, index, error, attempts, ...(results ? { resultsRef: results } : {}) }],
  });
}

/**
 * Hands the batch to a new run with an empty history: outcomes held inline move to the store
 * first, then the owner's carried state and the paging cursor travel as the next run's input.
 */
async function continueInNewRun(run: BatchRun, pages: PageQueue, compactPages: boolean): Promise<never> {
  const { input, state, book, activities } = run;
  if (!book.stored) {
    const results = await activities.resultsRef(workflowInfo().workflowId);
    state.setResults(results);
    await activities.appendOutcomes({ results, outcomes: book.all() });
    book.stored = true;
    if (compactPages && results.type === 'objects') {
      // Pages finished while the outcomes were still inline were never compacted: do it now.
      for (const page of pages.settledInline) pages.compact(results, page);
      await condition(() => pages.compacting === 0);
    }
  }
  await condition(allHandlersFinished);
  // Inline requests travel again (they are the input); a source is re-read from the cursor.
  return continueAsNew<typeof maritacaBatch>({
    ...(input.requests ? { requests: input.requests } : {}),
    ...(input.source ? { source: input.source } : {}),
    options: input.options,
    resume: state.toCarried(pages.cursor()),
  });
}
