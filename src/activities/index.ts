import type { DetailedEstimate, EstimateCostInput } from '../shared';
import { createCallMaritaca, type MaritacaConnectionOptions } from './call-maritaca';
import { estimateBatchCost } from './estimate-cost';
import { createObservabilityActivities, type ProgressListener } from './observability';

/** What the activities need from the worker: how to reach Maritaca, and who hears progress. */
export interface ActivityDependencies extends MaritacaConnectionOptions {
  /** Called with every progress snapshot of batches that set `progressWebhook` (or `notifyProgress`). */
  onProgress?: ProgressListener;
}

/**
 * Builds the batch's activities. Workflows see only the returned type
 * (`proxyActivities<ReturnType<typeof createActivities>>`), so tests can inject their own.
 *
 * @example
 * const activities = createActivities({ apiKey: process.env.MARITACA_API_KEY!, baseURL: 'https://chat.maritaca.ai/api' });
 */
export function createActivities(deps: ActivityDependencies) {
  return {
    /** Estimates the batch's cost (see {@link estimateBatchCost}). */
    async estimateCost(input: EstimateCostInput): Promise<DetailedEstimate> {
      return estimateBatchCost(input);
    },
    callMaritaca: createCallMaritaca(deps),
    ...createObservabilityActivities(deps.onProgress),
  };
}

export { estimateBatchCost } from './estimate-cost';
export { retryAfterMs, type MaritacaConnectionOptions } from './call-maritaca';
export { estimateMessageTokens, estimateTextTokens } from './token-estimate';
export { type PostProgressInput, type ProgressEvent, type ProgressListener } from './observability';
