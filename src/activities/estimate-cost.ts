import {
  CURRENCY,
  MODEL_PRICES,
  type ChatMessage,
  type DetailedEstimate,
  type EstimateCostInput,
  type InputTokenCount,
} from '../shared';
import { hasExactTokenizer } from '../tokenizer';
import { estimateMessageTokens } from './token-estimate';

const PER_MILLION = 1_000_000;

/**
 * Template tokens allowed per message and per request in the upper bound: more than the
 * estimator's 5 and 3, because Maritaca does not publish its chat template.
 */
export const BOUND_MESSAGE_OVERHEAD_TOKENS = 16;
export const BOUND_REQUEST_OVERHEAD_TOKENS = 16;

/**
 * An upper bound on a prompt's tokens: a byte-level BPE never emits more tokens than the text
 * has UTF-8 bytes, so bytes plus template overhead cannot be exceeded.
 */
export function promptTokenBound(messages: readonly ChatMessage[]): number {
  let tokens = BOUND_REQUEST_OVERHEAD_TOKENS;
  for (const message of messages) {
    tokens += Buffer.byteLength(message.content, 'utf8') + BOUND_MESSAGE_OVERHEAD_TOKENS;
  }
  return tokens;
}

/**
 * Estimates a batch's cost without calling the model: input tokens from
 * {@link estimateMessageTokens} (Maritaca's own tokenizer for the models it covers, labelled in
 * `inputTokenCount`), output at each request's `max_tokens` (the most it can be),
 * priced per model from {@link MODEL_PRICES}. `maxCost` replaces the input estimate with
 * {@link promptTokenBound}: what the batch cannot exceed. Cached-input discounts are ignored.
 */
export function estimateBatchCost(input: EstimateCostInput): DetailedEstimate {
  let totalInputTokens = 0;
  let totalOutputTokens = 0;
  let inputCost = 0;
  let outputCost = 0;
  let maxCost = 0;
  const count = input.requests.length;
  const perRequestInputTokens: number[] = new Array(count);
  const perRequestMaxCost: number[] = new Array(count);
  const perRequestCost: number[] = new Array(count);
  let exactRequests = 0;
  input.requests.forEach((request, index) => {
    const price = MODEL_PRICES[request.model];
    if (!price) throw new Error(`No price known for model "${request.model}" (requests[${index}].model)`);
    if (hasExactTokenizer(request.model)) exactRequests += 1;
    const inputTokens = estimateMessageTokens(request.messages, request.model);
    const requestInputCost = (inputTokens * price.input) / PER_MILLION;
    const requestOutputCost = (request.maxTokens * price.output) / PER_MILLION;
    const requestMaxCost =
      (promptTokenBound(request.messages) * price.input) / PER_MILLION + requestOutputCost;
    perRequestInputTokens[index] = inputTokens;
    perRequestCost[index] = requestInputCost + requestOutputCost;
    perRequestMaxCost[index] = requestMaxCost;
    totalInputTokens += inputTokens;
    totalOutputTokens += request.maxTokens;
    inputCost += requestInputCost;
    outputCost += requestOutputCost;
    maxCost += requestMaxCost;
  });
  return {
    totalRequests: count,
    totalInputTokens,
    totalOutputTokens,
    inputCost: roundCost(inputCost),
    outputCost: roundCost(outputCost),
    totalCost: roundCost(inputCost + outputCost),
    currency: CURRENCY,
    model: input.model,
    // Rounded up so that approving `maxCost` always covers the sum of the per-request bounds.
    maxCost: Math.ceil(maxCost * 1e9) / 1e9,
    inputTokenCount: countingOf(exactRequests, count),
    perRequestInputTokens,
    perRequestMaxCost,
    perRequestCost,
  };
}

/** How the input tokens of `total` requests were counted, `exact` of them with Maritaca's tokenizer. */
export function countingOf(exact: number, total: number): InputTokenCount {
  if (exact === total) return 'exact';
  return exact === 0 ? 'heuristic' : 'mixed';
}

/** Rounds BRL to 1e-9 so sums print cleanly. */
function roundCost(value: number): number {
  return Math.round(value * 1e9) / 1e9;
}
