import {
  DEFAULT_MODEL,
  DEFAULT_TEMPORAL_ACTION_PRICE_USD,
  expectedTemporalActions,
  BUILT_IN_PRICES,
  addCosts,
  modelPriceOf,
  estimateInputOf,
  publicEstimate,
  resolveCalls,
  type BatchEstimate,
  type BatchOptions,
  type BatchRequest,
  type LoadPageInput,
  type InputTokenCount,
  type LoadPageOutput,
  type PriceTable,
  type PageItem,
  type RequestSource,
} from '../shared';
import type { BatchStore } from '../store';
import { estimateBatchCost } from './estimate-cost';

/** Requests read per page when a source is estimated in one pass. */
const ESTIMATE_PAGE = 2000;

/** Input of the `estimateCost` activity: inline requests or a source, and the batch options. */
export interface EstimateRequestsInput {
  requests?: BatchRequest[];
  source?: RequestSource;
  options: BatchOptions;
}

/** The batch estimate plus the number of requests it covers. */
export type CountedEstimate = BatchEstimate & { count: number };

/** Estimates inline requests or a whole source file, one page at a time. */
export async function estimateRequests(
  store: BatchStore,
  input: EstimateRequestsInput,
  heartbeat?: () => void,
  prices: PriceTable = BUILT_IN_PRICES,
): Promise<CountedEstimate> {
  if (input.requests) {
    const estimate = publicEstimate(
      estimateBatchCost(estimateInputOf(input.requests, input.options), prices),
    );
    return { ...estimate, count: input.requests.length };
  }
  if (!input.source) throw new Error('estimateCost needs requests or a source');
  const total: CountedEstimate = {
    totalRequests: 0,
    totalInputTokens: 0,
    totalOutputTokens: 0,
    inputCost: 0,
    outputCost: 0,
    totalCost: 0,
    currency: 'BRL',
    model: input.options.model ?? DEFAULT_MODEL,
    maxCost: 0,
    count: 0,
  };
  // Each page says how it counted; the whole batch is mixed as soon as two pages differ.
  const counted = new Set<InputTokenCount>();
  let offset = 0;
  for (;;) {
    heartbeat?.();
    const page = await store.readRequestPage(input.source, offset, ESTIMATE_PAGE);
    if (page.requests.length === 0) break;
    const e = estimateBatchCost(estimateInputOf(page.requests, input.options), prices);
    total.totalRequests += e.totalRequests;
    total.count += e.totalRequests;
    total.totalInputTokens += e.totalInputTokens;
    total.totalOutputTokens += e.totalOutputTokens;
    total.inputCost = addCosts(total.inputCost, e.inputCost);
    total.outputCost = addCosts(total.outputCost, e.outputCost);
    total.totalCost = addCosts(total.totalCost, e.totalCost);
    total.maxCost = Math.ceil((total.maxCost + e.maxCost) * 1e9) / 1e9;
    if (e.inputTokenCount) counted.add(e.inputTokenCount);
    if (e.toolTokens) total.toolTokens = (total.toolTokens ?? 0) + e.toolTokens;
    if (e.images) {
      total.images = (total.images ?? 0) + e.images;
      total.imageTokens = (total.imageTokens ?? 0) + (e.imageTokens ?? 0);
    }
    offset = page.nextByteOffset;
  }
  // Expected actions are a whole-batch figure: computed once the batch is counted.
  total.temporalActions = expectedTemporalActions(
    total.count,
    input.options.temporalActionPrice ?? DEFAULT_TEMPORAL_ACTION_PRICE_USD,
  );
  if (counted.size > 0) total.inputTokenCount = counted.size === 1 ? [...counted][0]! : 'mixed';
  return total;
}

/** Resolves and prices one page of requests (inline, or read from the source at `byteOffset`). */
export async function loadRequestPage(
  store: BatchStore,
  input: LoadPageInput,
  prices: PriceTable = BUILT_IN_PRICES,
): Promise<LoadPageOutput> {
  let requests = input.requests;
  let nextByteOffset: number | undefined;
  if (!requests) {
    if (!input.source) throw new Error('loadPage needs requests or a source');
    const page = await store.readRequestPage(input.source, input.byteOffset ?? 0, input.limit);
    requests = page.requests;
    nextByteOffset = page.nextByteOffset;
  }
  const calls = resolveCalls(requests, input.options, input.startIndex);
  const estimate = estimateBatchCost(estimateInputOf(requests, input.options), prices);
  return {
    items: calls.map((call, i): PageItem => {
      const contentTokens = estimate.perRequestContentTokens[i];
      const price = modelPriceOf(prices, call.model);
      return {
        index: input.startIndex + i,
        call,
        inputTokens: estimate.perRequestInputTokens[i] ?? 0,
        cost: estimate.perRequestCost[i] ?? 0,
        maxCost: estimate.perRequestMaxCost[i] ?? 0,
        // With these the workflow re-prices the reservation once it knows the template overhead.
        ...(contentTokens != null
          ? { contentTokens, price: { input: price.input, output: price.output } }
          : {}),
      };
    }),
    ...(nextByteOffset !== undefined ? { nextByteOffset } : {}),
  };
}
