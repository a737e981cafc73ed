import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ContinueAsNew,
  TimeoutFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  log,
  patched,
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
  DEFAULT_HISTORY_EVENT_LIMIT,
  DEFAULT_MAX_CONCURRENCY,
  INLINE_RESULTS_MAX,
  DEFAULT_REQUEST_TIMEOUT_MS,
  ACTUAL_COST_KEY,
  BATCH_STATUS_KEY,
  DEFAULT_RETRY,
  ESTIMATED_COST_KEY,
  FailureTypes,
  MessageDescriptions,
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
  describeRequestError,
  markdownText,
  estimateQuery,
  parseDurationMs,
  pauseSignal,
  progressQuery,
  pruneWindow,
  renderCurrentDetails,
  rateWaitMs,
  rejectSignal,
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
  type CarriedState,
  type PageItem,
  type ResultsRef,
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
/** Requests resolved and priced per `loadPage` call; the workflow holds at most two pages. */
const PAGE_SIZE = 500;
/** Patch id: finished pages of stored outcomes are folded into one object each (earlier versions did not). */
const COMPACT_PAGES_PATCH = 'compact-result-pages';
/** Events a run may still add after deciding to continue as new (draining, handlers, the end). */
const HISTORY_MARGIN_EVENTS = 200;

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
  const total = resume ? resume.estimate.totalRequests : requests ? requests.length : (source?.count ?? 0);
  // Large batches (and every continued run) keep outcomes in the results store, off the history.
  let storeResults = resume !== undefined || total > INLINE_RESULTS_MAX;
  const historyEventLimit = options.historyEventLimit ?? DEFAULT_HISTORY_EVENT_LIMIT;
  const requestTimeoutMs = parseDurationMs(options.requestTimeout) ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const approvalTimeoutMs = parseDurationMs(options.approvalTimeout);
  const maximumAttempts = options.retry?.maximumAttempts ?? DEFAULT_RETRY.maximumAttempts;
  const limits = options.rateLimit;

  // Store work is short and reports no heartbeat: a worker that dies in it is found out by the
  // timeout, which must stay short. The estimate reads the whole source, so it heartbeats instead.
  const { loadPage, resultsRef, appendOutcomes, compactOutcomes } = proxyActivities<Activities>({
    startToCloseTimeout: '30 seconds',
    retry: { maximumAttempts: 5 },
  });
  const { estimateCost } = proxyActivities<Activities>({
    startToCloseTimeout: '30 minutes',
    heartbeatTimeout: '30 seconds',
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

  const startedAt = resume?.startedAt ?? workflowInfo().startTime.toISOString();
  const state = {
    status: (resume ? 'running' : 'estimating') as BatchStatus,
    waitingFor: null as WaitingFor,
    estimate: (resume?.estimate ?? null) as BatchEstimate | null,
    approvals: resume?.approvals ?? ([] as ApprovalRecord[]),
    /** An `approve` signal that arrived before the estimate was known. */
    earlyApproval: null as { budget?: number; approvedBy?: string } | null,
    rejected: false,
    rejectionReason: null as string | null,
    succeeded: resume?.succeeded ?? 0,
    failed: resume?.failed ?? 0,
    inFlight: 0,
    actualCost: resume?.actualCost ?? 0,
    reserved: 0,
    /** Estimated and worst-case cost of the requests started (and not sent back): "the rest" is the estimate minus these. */
    dispatchedCost: resume?.dispatchedCost ?? 0,
    dispatchedMaxCost: resume?.dispatchedMaxCost ?? 0,
    maxConcurrency: resume?.maxConcurrency ?? options.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY,
    window: resume?.window ?? options.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY,
    paused: resume?.paused ?? false,
    holdUntil: resume?.holdUntil ?? 0,
    rateLimitedResponses: resume?.rateLimitedResponses ?? 0,
    /** Index of the first request never started. */
    nextIndex: resume?.nextIndex ?? 0,
    run: (resume?.run ?? 0) + 1,
    updatedAt: startedAt,
    /** Bumped on every change, so the dispatch loop can wait for "anything happened". */
    version: 0,
    runningSince: (resume?.runningSince ?? null) as number | null,
    detailsAt: 0,
    progressPostedAt: 0,
    progressPosting: false,
  };
  // Only upsert search attributes the namespace has: unknown ones would fail every workflow task.
  let searchAttributes = false;
  // Inline batches keep every outcome here; stored ones keep none.
  const outcomes: (RequestOutcome | null)[] = storeResults
    ? []
    : new Array<RequestOutcome | null>(total).fill(null);
  // Indices in the order their requests finished (inline batches), so clients can follow completions.
  const completionOrder: number[] = [];
  // Requests sent back by a 429, to go before the ones never started.
  const retryQueue: PageItem[] = resume?.retryQueue ?? [];
  // Attempts spent in earlier executions of a request (each 429 ends one).
  const priorAttempts: Record<string, number> = resume?.priorAttempts ?? {};
  const reservations: Record<string, number> = {};
  const rateWindow: WindowEntry[] = resume?.rateWindow ?? [];
  let results: ResultsRef | null = resume?.results ?? null;
  // Loaded, priced requests not started yet, and the pages they came from (for the resume cursor).
  const buffer: PageItem[] = [];
  const pages: { startIndex: number; byteOffset: number; end: number }[] = [];
  let nextPage = { startIndex: resume?.pageStartIndex ?? 0, byteOffset: resume?.byteOffset ?? 0 };
  let loading = false;
  // Pages whose requests are not all settled yet; a page is compacted in the store once they are.
  const openPages: { start: number; end: number; settled: number }[] = resume?.openPages ?? [];
  let compacting = 0;
  // Pages settled while outcomes were still kept inline: compacted if the batch moves them to the store.
  const pagesSettledInline: { start: number; end: number }[] = [];

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
  const renderFinalDetails = (lastError: string | null): void => {
    state.waitingFor = null;
    setCurrentDetails(renderCurrentDetails(progress(), requestsPerMinute(), lastError));
  };
  /** The error of the request that failed last in this run, inline and stored batches alike. */
  let lastFailure: RequestError | null = null;
  const lastRequestError = (): string | null => (lastFailure ? describeRequestError(lastFailure) : null);
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
  const restCost = (): number => Math.max(0, addCosts(state.estimate?.totalCost ?? 0, -state.dispatchedCost));
  const restMaxCost = (): number =>
    Math.max(0, addCosts(state.estimate?.maxCost ?? 0, -state.dispatchedMaxCost));
  const neededToFinish = (): number => addCosts(addCosts(state.actualCost, state.reserved), restMaxCost());

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
              restEstimate: restCost(),
              restMaxCost: restMaxCost(),
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
      results: storeResults ? [] : outcomes.filter((o): o is RequestOutcome => o !== null),
      estimate: state.estimate,
      approvedBudget: approvedBudget(),
      actualCost: state.actualCost,
      currency: 'BRL',
      rejectionReason: state.rejectionReason,
      approvals: state.approvals,
      ...(storeResults && results ? { resultsRef: results } : {}),
      runs: state.run,
      counts: { total, succeeded: state.succeeded, failed: state.failed },
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

  setHandler(progressQuery, progress, { description: MessageDescriptions.progress });
  setHandler(estimateQuery, () => state.estimate, { description: MessageDescriptions.estimate });
  setHandler(
    completionsQuery,
    ({ from, limit }) => {
      if (storeResults) {
        // Stored batches hold no outcomes in memory: counts only; read the outcomes from the store.
        const completed = state.succeeded + state.failed;
        return { total, completed, nextFrom: completed, outcomes: [], status: state.status };
      }
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
    },
    { description: MessageDescriptions.completions },
  );

  setHandler(
    approveSignal,
    (payload) => {
      // A person sending `approve` from the UI may type no data at all: that approves the estimate.
      const parsed = validateWith(approveSchema, isEmptyPayload(payload) ? {} : payload);
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
    },
    { description: MessageDescriptions.approve },
  );
  setHandler(approveBudgetUpdate, ({ budget, approvedBy }) => recordApproval(budget, 'update', approvedBy), {
    description: MessageDescriptions.approveBudget,
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
  setHandler(
    rejectSignal,
    (payload) => {
      if (state.status !== 'estimating' && !waitingForApproval()) {
        log.info('Ignoring reject signal: the batch is not waiting for approval', { status: state.status });
        return;
      }
      state.rejected = true;
      state.rejectionReason = payload?.reason ?? null;
      touch();
    },
    { description: MessageDescriptions.reject },
  );
  setHandler(
    pauseSignal,
    () => {
      state.paused = true;
      touch();
    },
    { description: MessageDescriptions.pause },
  );
  setHandler(
    resumeSignal,
    () => {
      state.paused = false;
      touch();
    },
    { description: MessageDescriptions.resume },
  );
  setHandler(
    setConcurrencyUpdate,
    (concurrency) => {
      state.maxConcurrency = concurrency;
      state.window = concurrency;
      touch();
      return concurrency;
    },
    {
      description: MessageDescriptions.setConcurrency,
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
    const result = await runBatch();
    // A closed batch is read through a replaying query: its details must say how it ended, the
    // last error included, so a batch whose every request failed does not look like a success.
    renderFinalDetails(lastRequestError());
    return result;
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    // Only the details change here: a status upsert would be a command old histories lack.
    state.status = isCancellation(err) ? 'cancelled' : 'failed';
    renderFinalDetails(state.status === 'failed' ? describeWorkflowError(err) : lastRequestError());
    throw err;
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
    if (!resume) {
      // --- Estimate -------------------------------------------------------------------------------
      const { count: _count, ...estimate } = await estimateCost({
        ...(requests ? { requests } : {}),
        ...(source ? { source } : {}),
        options,
      });
      state.estimate = estimate;
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
    }

    // --- Run ------------------------------------------------------------------------------------
    if (storeResults && !results) results = await resultsRef(workflowInfo().workflowId);
    const compactPages = patched(COMPACT_PAGES_PATCH);
    state.runningSince ??= Date.now();
    setStatus('running');
    // Every Maritaca call runs in this scope, so a fatal failure can cancel the ones still in flight.
    const callScope = new CancellationScope();
    let fatal: { id: string; index: number; error: RequestError; attempts: number } | null = null;
    let cancelled = false;
    let continuing = false;

    const fitsBudget = (item: PageItem): boolean =>
      addCosts(addCosts(state.actualCost, state.reserved), item.maxCost) <=
      (approvedBudget() ?? 0) + COST_EPSILON;

    const loadNextPage = async (): Promise<void> => {
      loading = true;
      try {
        const page = nextPage;
        const output = await loadPage({
          ...(requests
            ? { requests: requests.slice(page.startIndex, page.startIndex + PAGE_SIZE) }
            : { source: source!, byteOffset: page.byteOffset }),
          startIndex: page.startIndex,
          limit: PAGE_SIZE,
          options,
        });
        const end = page.startIndex + output.items.length;
        pages.push({ ...page, end });
        if (!openPages.some((p) => p.start === page.startIndex) && end > page.startIndex) {
          openPages.push({ start: page.startIndex, end, settled: 0 });
        }
        // A resumed run re-reads the page it stopped in; requests started before are skipped.
        buffer.push(...output.items.filter((item) => item.index >= state.nextIndex));
        nextPage = { startIndex: end, byteOffset: output.nextByteOffset ?? 0 };
      } finally {
        loading = false;
        touch();
      }
    };
    const moreToLoad = (): boolean => nextPage.startIndex < total;
    const shouldContinueAsNew = (): boolean => {
      const info = workflowInfo();
      const workLeft = buffer.length > 0 || retryQueue.length > 0 || moreToLoad();
      return (
        workLeft &&
        (info.continueAsNewSuggested ||
          info.historyLength + 3 * state.inFlight + HISTORY_MARGIN_EVENTS >= historyEventLimit)
      );
    };

    const blockedBy = (item: PageItem): Blocked | null => {
      if (state.paused) return { status: 'paused', waitingFor: 'pause' };
      if (state.inFlight >= allowedInFlight()) return { status: 'running', waitingFor: null };
      const now = Date.now();
      if (now < state.holdUntil)
        return { status: 'running', waitingFor: 'retry_after', timeoutMs: state.holdUntil - now };
      if (limits) {
        pruneWindow(rateWindow, now);
        const wait = rateWaitMs(rateWindow, limits, now, item.inputTokens, item.call.maxTokens);
        if (wait > 0) return { status: 'running', waitingFor: 'rate_limit', timeoutMs: wait };
      }
      if (!fitsBudget(item)) {
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

    const recordFailure = async (item: PageItem, outcome: RequestOutcome): Promise<void> => {
      if (!storeResults) {
        outcomes[item.index] = outcome;
        completionOrder.push(item.index);
        return;
      }
      await appendOutcomes({ results: results!, outcomes: [outcome] });
    };

    const compactPage = (page: { start: number; end: number }): void => {
      compacting += 1;
      compactOutcomes({ results: results!, startIndex: page.start, endIndex: page.end })
        .catch((err: unknown) =>
          // Uncompacted outcomes stay readable one by one; only the object count suffers.
          log.warn('Could not compact a page of outcomes', {
            start: page.start,
            error: (err as Error).message,
          }),
        )
        .finally(() => {
          compacting -= 1;
          touch();
        });
    };
    /** Counts a request as settled for good; its page is compacted once all of its requests are. */
    const settle = (index: number): void => {
      const at = openPages.findIndex((p) => index >= p.start && index < p.end);
      if (at === -1) return;
      const page = openPages[at]!;
      page.settled += 1;
      if (page.settled < page.end - page.start) return;
      openPages.splice(at, 1);
      if (!storeResults) pagesSettledInline.push(page);
      else if (compactPages && results?.type === 'objects') compactPage(page);
    };

    const runRequest = async (item: PageItem): Promise<void> => {
      const { call, index } = item;
      try {
        const output = await callScope.run(() =>
          callMaritaca.executeWithOptions({ ...callOptions, summary: `request ${call.requestId}` }, [
            storeResults ? { ...call, store: { results: results!, index } } : call,
          ]),
        );
        if (!storeResults && output.result) {
          outcomes[index] = {
            id: call.requestId,
            index,
            ok: true,
            result: output.result,
            attempts: output.attempt + (priorAttempts[index] ?? 0),
            cost: output.cost,
          };
          completionOrder.push(index);
        }
        delete priorAttempts[index];
        state.succeeded += 1;
        settle(index);
        state.actualCost = addCosts(state.actualCost, output.cost);
        state.window = adaptWindow(state.window, state.maxConcurrency, 'success');
        // Count what the call really used against the minute, not what it might have used.
        const entry = rateWindow.find((e) => e.index === index);
        if (entry) {
          entry.inputTokens = output.usage.promptTokens;
          entry.outputTokens = output.usage.completionTokens;
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
            retryQueue.push(item);
            state.dispatchedCost = addCosts(state.dispatchedCost, -item.cost);
            state.dispatchedMaxCost = addCosts(state.dispatchedMaxCost, -item.maxCost);
            return;
          }
        }
        delete priorAttempts[index];
        state.failed += 1;
        const outcome: RequestOutcome = {
          id: call.requestId,
          index,
          ok: false,
          error,
          attempts: attemptsSoFar,
        };
        lastFailure = error;
        try {
          await CancellationScope.nonCancellable(() => recordFailure(item, outcome));
        } catch (writeError) {
          log.error('Could not record a failed request in the results store', {
            requestId: call.requestId,
            error: (writeError as Error).message,
          });
        }
        settle(index);
        if (!options.returnExceptions && !fatal) {
          fatal = { id: call.requestId, index, error, attempts: attemptsSoFar };
          callScope.cancel();
        }
      } finally {
        state.inFlight -= 1;
        state.reserved = addCosts(state.reserved, -(reservations[index] ?? 0));
        delete reservations[index];
        touch();
      }
    };

    const start = (item: PageItem): void => {
      state.inFlight += 1;
      reservations[item.index] = item.maxCost;
      state.reserved = addCosts(state.reserved, item.maxCost);
      state.dispatchedCost = addCosts(state.dispatchedCost, item.cost);
      state.dispatchedMaxCost = addCosts(state.dispatchedMaxCost, item.maxCost);
      if (limits) {
        rateWindow.push({
          index: item.index,
          at: Date.now(),
          inputTokens: item.inputTokens,
          outputTokens: item.call.maxTokens,
        });
      }
      touch();
      void runRequest(item);
    };

    let endStatus: BatchStatus = 'completed';
    try {
      for (;;) {
        if (fatal) break;
        if (state.rejected && state.status === 'awaiting_budget') {
          endStatus = 'budget_exhausted';
          break;
        }
        if (shouldContinueAsNew()) {
          continuing = true;
          break;
        }
        if (!loading && buffer.length < PAGE_SIZE / 2 && moreToLoad()) void loadNextPage();
        while (pages.length > 0 && (buffer.length === 0 || buffer[0]!.index >= pages[0]!.end)) pages.shift();
        const next = retryQueue[0] ?? buffer[0];
        const seen = state.version;
        if (next === undefined) {
          if (state.inFlight === 0 && !loading && !moreToLoad()) break;
          await condition(() => state.version !== seen);
          continue;
        }
        const blocked = blockedBy(next);
        if (!blocked) {
          setStatus('running');
          if (retryQueue.length > 0) retryQueue.shift();
          else {
            buffer.shift();
            state.nextIndex = next.index + 1;
          }
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
      await condition(() => state.inFlight === 0 && !loading && compacting === 0);
    } catch (err) {
      if (!isCancellation(err)) throw err;
      cancelled = true;
      // Wait, uncancellably, until every in-flight call has confirmed its cancellation.
      await CancellationScope.nonCancellable(() => condition(() => state.inFlight === 0));
      return finish('cancelled');
    }

    if (fatal !== null) {
      const { id, index, error, attempts } = fatal as {
        id: string;
        index: number;
        error: RequestError;
        attempts: number;
      };
      setStatus('failed');
      throw ApplicationFailure.create({
        type: FailureTypes.RequestFailed,
        message:
          `Request "${id}" (index ${index}) failed after ${attempts} attempt(s): ` +
          `${error.type}${error.status ? ` (HTTP ${error.status})` : ''}: ${error.message}`,
        nonRetryable: true,
        details: [
          { id, index, error, attempts, ...(storeResults && results ? { resultsRef: results } : {}) },
        ],
      });
    }
    if (continuing) {
      if (!storeResults) {
        // The next run starts with an empty history: what this one holds moves to the store.
        results = await resultsRef(workflowInfo().workflowId);
        await appendOutcomes({ results, outcomes: outcomes.filter((o): o is RequestOutcome => o !== null) });
        storeResults = true;
        if (compactPages && results.type === 'objects') {
          // Pages finished while the outcomes were still inline were never compacted: do it now.
          for (const page of pagesSettledInline) compactPage(page);
          await condition(() => compacting === 0);
        }
      }
      await condition(allHandlersFinished);
      const cursor = pages[0] ?? nextPage;
      const carried: CarriedState = {
        run: state.run,
        startedAt,
        runningSince: state.runningSince,
        estimate: state.estimate!,
        approvals: state.approvals,
        nextIndex: state.nextIndex,
        pageStartIndex: cursor.startIndex,
        byteOffset: cursor.byteOffset,
        succeeded: state.succeeded,
        failed: state.failed,
        actualCost: state.actualCost,
        dispatchedCost: state.dispatchedCost,
        dispatchedMaxCost: state.dispatchedMaxCost,
        maxConcurrency: state.maxConcurrency,
        window: state.window,
        paused: state.paused,
        holdUntil: state.holdUntil,
        rateLimitedResponses: state.rateLimitedResponses,
        rateWindow,
        retryQueue,
        priorAttempts,
        results: results!,
        openPages,
      };
      // Inline requests travel again (they are the input); a source is re-read from the cursor.
      return continueAsNew<typeof maritacaBatch>({
        ...(requests ? { requests } : {}),
        ...(source ? { source } : {}),
        options,
        resume: carried,
      });
    }
    return finish(endStatus);
  }
}

/**
 * Whether an `approve` payload carries nothing: absent, `null`, or a blank string (what a form
 * left empty may send). Such a signal approves the estimate.
 */
function isEmptyPayload(payload: unknown): boolean {
  return payload === undefined || payload === null || (typeof payload === 'string' && payload.trim() === '');
}

/** Why the batch failed, in one line: an activity's failure names its cause too. */
function describeWorkflowError(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return `${err.message}: ${err.cause.message}`;
  return err instanceof Error ? err.message : String(err);
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
