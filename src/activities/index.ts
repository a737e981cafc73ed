import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import {
  FailureTypes,
  UnknownModelError,
  type LoadPageInput,
  type LoadPageOutput,
  type PriceTable,
  type RequestOutcome,
  type AnsweredCall,
  type ResultsRef,
  type KeyLimits,
} from '../shared';
import { StoreAccessError, storeFromEnv, type BatchStore } from '../store';
import { createCallMaritaca, createCallMaritacaRun, type MaritacaConnectionOptions } from './call-maritaca';
import { estimateRequests, loadRequestPage, type CountedEstimate, type EstimateRequestsInput } from './pages';
import { createObservabilityActivities, type ProgressListener } from './observability';
import { createKeyLeaseActivity } from './key-lease';

/** What the activities need from the worker: how to reach Maritaca, and who hears progress. */
export interface ActivityDependencies extends MaritacaConnectionOptions {
  /** Called with every progress snapshot of batches that set `progressWebhook` (or `notifyProgress`). */
  onProgress?: ProgressListener;
  /** Where large batches page their requests and keep their outcomes (default: {@link storeFromEnv}). */
  store?: BatchStore;
  /**
   * The price table the worker loaded (`MARITACA_PRICES_FILE` merged over the built-in one), for
   * estimating and charging the models it adds or reprices; unset means the built-in table.
   */
  prices?: PriceTable;
  /**
   * The key's per-minute limits (`MARITACA_RATE_LIMIT`), shared through the key limiter by every
   * batch and worker on the key; unset means `leaseKeyCapacity` answers `{ unlimited: true }`.
   */
  keyLimits?: KeyLimits;
}

/**
 * Runs a store operation; a permanent store refusal (no such object, access denied) becomes a
 * non-retryable failure naming the object and the store's own words, so the batch stops at once
 * instead of retrying what cannot succeed.
 */
async function storeCall<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (err) {
    if (err instanceof StoreAccessError && err.permanent) {
      throw ApplicationFailure.create({
        type: FailureTypes.StoreUnreadable,
        message: err.message,
        nonRetryable: true,
      });
    }
    // A model this worker's price table does not know will not become known by retrying.
    if (err instanceof UnknownModelError) {
      throw ApplicationFailure.create({
        type: FailureTypes.InvalidInput,
        message: err.message,
        nonRetryable: true,
      });
    }
    throw err;
  }
}

/**
 * Builds the batch's activities. Workflows see only the returned type
 * (`proxyActivities<ReturnType<typeof createActivities>>`), so tests can inject their own.
 *
 * @example
 * const activities = createActivities({ apiKey: process.env.MARITACA_API_KEY!, baseURL: 'https://chat.maritaca.ai/api' });
 */
export function createActivities(deps: ActivityDependencies) {
  const store = deps.store ?? storeFromEnv();
  return {
    /** Estimates the batch's cost from inline requests or a whole source file. */
    async estimateCost(input: EstimateRequestsInput): Promise<CountedEstimate> {
      // A heartbeat per page read, so a worker that dies in a long estimate is noticed in seconds.
      return storeCall(() =>
        estimateRequests(store, input, () => Context.current().heartbeat(), deps.prices),
      );
    },
    /** Resolves and prices the next page of requests. */
    async loadPage(input: LoadPageInput): Promise<LoadPageOutput> {
      return storeCall(() => loadRequestPage(store, input, deps.prices));
    },
    /** Where this batch's outcomes go when they are kept off the history (one place per run that asks). */
    async resultsRef(batchId: string): Promise<ResultsRef> {
      return store.resultsRefFor(batchId, Context.current().info.workflowExecution?.runId);
    },
    /** Writes outcomes the workflow holds (failures, or an inline batch switching to the store). */
    async appendOutcomes(input: { results: ResultsRef; outcomes: RequestOutcome[] }): Promise<void> {
      await storeCall(() => store.appendOutcomes(input.results, input.outcomes));
    },
    /**
     * What the store holds of requests whose run never reported back: the ones it answered
     * (each writes its outcome before the next call starts), with their usage and cost.
     */
    async answeredInStore(input: {
      results: ResultsRef;
      indexes: number[];
      /** Return the answers too (an inline batch keeps them in the workflow). */
      withResults?: boolean;
    }): Promise<AnsweredCall[]> {
      const outcomes = await storeCall(() => store.readSingleOutcomes(input.results, input.indexes));
      return outcomes.flatMap((outcome) =>
        outcome.ok
          ? [
              {
                index: outcome.index,
                cost: outcome.cost,
                usage: {
                  promptTokens: outcome.result.llmOutput.tokenUsage.promptTokens,
                  completionTokens: outcome.result.llmOutput.tokenUsage.completionTokens,
                },
                ...(input.withResults ? { result: outcome.result } : {}),
              },
            ]
          : [],
      );
    },
    /** Folds the outcomes of a finished page into one object. */
    async compactOutcomes(input: {
      results: ResultsRef;
      startIndex: number;
      endIndex: number;
    }): Promise<void> {
      await storeCall(() => store.compactOutcomes(input.results, input.startIndex, input.endIndex));
    },
    callMaritaca: createCallMaritaca({ ...deps, store }),
    callMaritacaRun: createCallMaritacaRun({ ...deps, store }),
    ...createObservabilityActivities(deps.onProgress),
    /** Leases capacity of the worker's key from its limiter workflow (see `key-lease.ts`). */
    leaseKeyCapacity: createKeyLeaseActivity({
      apiKey: deps.apiKey,
      ...(deps.keyLimits ? { limits: deps.keyLimits } : {}),
    }),
  };
}

export { estimateBatchCost } from './estimate-cost';
export { retryAfterMs, type MaritacaConnectionOptions } from './call-maritaca';
export { estimateMessageTokens, estimateTextTokens } from './token-estimate';
export { type PostProgressInput, type ProgressEvent, type ProgressListener } from './observability';
export type { CountedEstimate, EstimateRequestsInput } from './pages';
export {
  createKeyLeaseActivity,
  keyLimiterWorkflowId,
  type KeyLeaseDemand,
  type KeyLeaseOptions,
} from './key-lease';
