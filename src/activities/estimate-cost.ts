import { CURRENCY, MODEL_PRICES, type DetailedEstimate, type EstimateCostInput } from '../shared';
import { estimateMessageTokens } from './token-estimate';

const PER_MILLION = 1_000_000;

/**
 * Estimates a batch's cost without calling the model: input tokens from
 * {@link estimateMessageTokens}, output at each request's `max_tokens` (the worst case), priced
 * per model from {@link MODEL_PRICES}. Cached-input discounts are ignored, so the estimate
 * errs high.
 */
export function estimateBatchCost(input: EstimateCostInput): DetailedEstimate {
  let totalInputTokens = 0;
  let totalOutputTokens = 0;
  let inputCost = 0;
  let outputCost = 0;
  const perRequestInputTokens: number[] = new Array(input.requests.length);
  const perRequestMaxCost: number[] = new Array(input.requests.length);
  input.requests.forEach((request, index) => {
    const price = MODEL_PRICES[request.model];
    if (!price) throw new Error(`No price known for model "${request.model}" (requests[${index}].model)`);
    const inputTokens = estimateMessageTokens(request.messages);
    const requestInputCost = (inputTokens * price.input) / PER_MILLION;
    const requestOutputCost = (request.maxTokens * price.output) / PER_MILLION;
    perRequestInputTokens[index] = inputTokens;
    perRequestMaxCost[index] = requestInputCost + requestOutputCost;
    totalInputTokens += inputTokens;
    totalOutputTokens += request.maxTokens;
    inputCost += requestInputCost;
    outputCost += requestOutputCost;
  });
  return {
    totalRequests: input.requests.length,
    totalInputTokens,
    totalOutputTokens,
    inputCost: roundCost(inputCost),
    outputCost: roundCost(outputCost),
    totalCost: roundCost(inputCost + outputCost),
    currency: CURRENCY,
    model: input.model,
    perRequestInputTokens,
    perRequestMaxCost,
  };
}

/** Rounds BRL to 1e-9 so sums print cleanly. */
function roundCost(value: number): number {
  return Math.round(value * 1e9) / 1e9;
}
