import {
  CURRENCY,
  DEFAULT_TEMPLATE_OVERHEAD,
  BUILT_IN_PRICES,
  modelPriceOf,
  templateTokens,
  type PriceTable,
  type ChatMessage,
  type DetailedEstimate,
  type EstimateCostInput,
  type InputTokenCount,
} from '../shared';
import { estimateTextTokens, exactContentTokens } from './token-estimate';

const PER_MILLION = 1_000_000;

/**
 * An upper bound on a prompt's content tokens for a model without a known tokenizer: a
 * byte-level BPE never emits more tokens than the text has UTF-8 bytes.
 */
export function contentTokenBound(messages: readonly ChatMessage[]): number {
  let tokens = 0;
  for (const message of messages) tokens += Buffer.byteLength(message.content, 'utf8');
  return tokens;
}

/**
 * Estimates a batch's cost without calling the model. Prompts are counted with Maritaca's own
 * tokenizer for the models it covers (labelled in `inputTokenCount`) plus the chat template's
 * overhead (`input.templateOverhead`, by default the conservative
 * {@link DEFAULT_TEMPLATE_OVERHEAD}); answers at each request's `max_tokens` (the most they can
 * be); priced per model from `prices` (the built-in table unless the worker or client loaded a
 * prices file). For such prompts the estimate is also the
 * worst case (`maxCost`). A model without a tokenizer is estimated by the heuristic and bounded
 * by one token per UTF-8 byte. Cached-input discounts are ignored.
 */
export function estimateBatchCost(
  input: EstimateCostInput,
  prices: PriceTable = BUILT_IN_PRICES,
): DetailedEstimate {
  const overhead = input.templateOverhead ?? DEFAULT_TEMPLATE_OVERHEAD;
  let totalInputTokens = 0;
  let totalOutputTokens = 0;
  let inputCost = 0;
  let outputCost = 0;
  let maxCost = 0;
  const count = input.requests.length;
  const perRequestInputTokens: number[] = new Array(count);
  const perRequestMaxCost: number[] = new Array(count);
  const perRequestCost: number[] = new Array(count);
  const perRequestContentTokens: (number | null)[] = new Array(count);
  let exactRequests = 0;
  input.requests.forEach((request, index) => {
    const price = modelPriceOf(prices, request.model);
    const template = templateTokens(overhead, request.messages.length);
    const exact = exactContentTokens(request.messages, request.model);
    if (exact !== null) exactRequests += 1;
    const inputTokens =
      (exact ?? request.messages.reduce((sum, m) => sum + estimateTextTokens(m.content), 0)) + template;
    const inputBound = exact !== null ? inputTokens : contentTokenBound(request.messages) + template;
    const requestInputCost = (inputTokens * price.input) / PER_MILLION;
    const requestOutputCost = (request.maxTokens * price.output) / PER_MILLION;
    perRequestInputTokens[index] = inputTokens;
    perRequestContentTokens[index] = exact;
    perRequestCost[index] = requestInputCost + requestOutputCost;
    perRequestMaxCost[index] = (inputBound * price.input) / PER_MILLION + requestOutputCost;
    totalInputTokens += inputTokens;
    totalOutputTokens += request.maxTokens;
    inputCost += requestInputCost;
    outputCost += requestOutputCost;
    maxCost += perRequestMaxCost[index];
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
    perRequestContentTokens,
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
