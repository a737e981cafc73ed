import type { LoadPageInput, LoadPageOutput, RequestOutcome, ResultsRef } from '../shared';
import { createJsonlFileStore, type BatchStore } from './batch-store';
import { createCallMaritaca, type MaritacaConnectionOptions } from './call-maritaca';
import { estimateRequests, loadRequestPage, type CountedEstimate, type EstimateRequestsInput } from './pages';
import { createObservabilityActivities, type ProgressListener } from './observability';

/** What the activities need from the worker: how to reach Maritaca, and who hears progress. */
export interface ActivityDependencies extends MaritacaConnectionOptions {
  /** Called with every progress snapshot of batches that set `progressWebhook` (or `notifyProgress`). */
  onProgress?: ProgressListener;
  /** Where large batches page their requests and keep their outcomes (default: JSONL files). */
  store?: BatchStore;
}

/**
 * Builds the batch's activities. Workflows see only the returned type
 * (`proxyActivities<ReturnType<typeof createActivities>>`), so tests can inject their own.
 *
 * @example
 * const activities = createActivities({ apiKey: process.env.MARITACA_API_KEY!, baseURL: 'https://chat.maritaca.ai/api' });
 */
export function createActivities(deps: ActivityDependencies) {
  const store = deps.store ?? createJsonlFileStore();
  return {
    /** Estimates the batch's cost from inline requests or a whole source file. */
    async estimateCost(input: EstimateRequestsInput): Promise<CountedEstimate> {
      return estimateRequests(store, input);
    },
    /** Resolves and prices the next page of requests. */
    async loadPage(input: LoadPageInput): Promise<LoadPageOutput> {
      return loadRequestPage(store, input);
    },
    /** Where this batch's outcomes go when they are kept off the history. */
    async resultsRef(batchId: string): Promise<ResultsRef> {
      return store.resultsRefFor(batchId);
    },
    /** Appends outcomes the workflow holds (failures, or an inline batch switching to the store). */
    async appendOutcomes(input: { results: ResultsRef; outcomes: RequestOutcome[] }): Promise<void> {
      await store.appendOutcomes(input.results, input.outcomes);
    },
    callMaritaca: createCallMaritaca({ ...deps, store }),
    ...createObservabilityActivities(deps.onProgress),
  };
}

export { estimateBatchCost } from './estimate-cost';
export { retryAfterMs, type MaritacaConnectionOptions } from './call-maritaca';
export { estimateMessageTokens, estimateTextTokens } from './token-estimate';
export { type PostProgressInput, type ProgressEvent, type ProgressListener } from './observability';
export {
  createJsonlFileStore,
  countJsonlRequests,
  defaultResultsDir,
  readResultsFile,
  type BatchStore,
  type JsonlFileStoreOptions,
} from './batch-store';
export type { CountedEstimate, EstimateRequestsInput } from './pages';
