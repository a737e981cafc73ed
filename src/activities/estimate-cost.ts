import {
  CURRENCY,
  DEFAULT_IMAGE_TOKEN_BOUND,
  DEFAULT_TEMPLATE_OVERHEAD,
  DEFAULT_TEMPORAL_ACTION_PRICE_USD,
  expectedTemporalActions,
  imagesIn,
  requestExtrasText,
  textsOf,
  BUILT_IN_PRICES,
  modelPriceOf,
  templateTokens,
  type PriceTable,
  type DetailedEstimate,
  type EstimateCostInput,
  type InputTokenCount,
} from '../shared';
import { estimateTextTokens, exactTokens } from './token-estimate';

const PER_MILLION = 1_000_000;

/** An upper bound on the tokens of texts without a known tokenizer: a byte-level BPE never emits more tokens than bytes. */
export function textTokenBound(texts: readonly string[]): number {
  let tokens = 0;
  for (const text of texts) tokens += Buffer.byteLength(text, 'utf8');
  return tokens;
}

/** What a request's prompt is made of, counted: messages and extras (tools, response format), images. */
interface PromptCount {
  /** Exact tokens of the message texts and extras, or null without a tokenizer. */
  exact: number | null;
  /** Tokens of the texts and extras: exact, or the heuristic's estimate. */
  tokens: number;
  /** Tokens of the tool definitions and the response format alone (part of `tokens`). */
  extraTokens: number;
  /** One token per UTF-8 byte of the texts and extras: the bound without a tokenizer. */
  bound: number;
  images: number;
}

function countPrompt(request: EstimateCostInput['requests'][number]): PromptCount {
  const texts = request.messages.flatMap(textsOf);
  const extras = requestExtrasText(request);
  const extraTexts = [extras.tools, extras.responseFormat];
  const exactText = exactTokens(texts, request.model);
  const exactExtras = exactTokens(extraTexts, request.model);
  const heuristic = (list: readonly string[]) =>
    list.reduce((sum, t) => sum + (t ? estimateTextTokens(t) : 0), 0);
  const extraTokens = exactExtras ?? heuristic(extraTexts);
  const exact = exactText === null || exactExtras === null ? null : exactText + exactExtras;
  return {
    exact,
    tokens: exact ?? heuristic(texts) + extraTokens,
    extraTokens,
    bound: textTokenBound([...texts, ...extraTexts]),
    images: request.messages.reduce((sum, m) => sum + imagesIn(m), 0),
  };
}

/**
 * Estimates a batch's cost without calling the model. Prompts are counted with Maritaca's own
 * tokenizer for the models it covers (labelled in `inputTokenCount`), tool definitions and
 * response formats included, plus the chat template's overhead (`input.templateOverhead`, by
 * default the conservative {@link DEFAULT_TEMPLATE_OVERHEAD}) and each image at
 * `input.imageTokenBound` (default {@link DEFAULT_IMAGE_TOKEN_BOUND}); answers at each request's
 * `max_tokens` (the most they can be); priced per model from `prices` (the built-in table unless
 * the worker or client loaded a prices file). For such prompts the estimate is also the worst
 * case (`maxCost`). A model without a tokenizer is estimated by the heuristic and bounded by one
 * token per UTF-8 byte. Cached-input discounts are ignored.
 */
export function estimateBatchCost(
  input: EstimateCostInput,
  prices: PriceTable = BUILT_IN_PRICES,
): DetailedEstimate {
  const overhead = input.templateOverhead ?? DEFAULT_TEMPLATE_OVERHEAD;
  const imageBound = input.imageTokenBound ?? DEFAULT_IMAGE_TOKEN_BOUND;
  let totalInputTokens = 0;
  let totalOutputTokens = 0;
  let inputCost = 0;
  let outputCost = 0;
  let maxCost = 0;
  let toolTokens = 0;
  let images = 0;
  const count = input.requests.length;
  const perRequestInputTokens: number[] = new Array(count);
  const perRequestMaxCost: number[] = new Array(count);
  const perRequestCost: number[] = new Array(count);
  const perRequestContentTokens: (number | null)[] = new Array(count);
  let exactRequests = 0;
  input.requests.forEach((request, index) => {
    const price = modelPriceOf(prices, request.model);
    const template = templateTokens(overhead, request.messages.length);
    const prompt = countPrompt(request);
    if (prompt.exact !== null) exactRequests += 1;
    const imageTokens = prompt.images * imageBound;
    const inputTokens = prompt.tokens + imageTokens + template;
    const inputBound = (prompt.exact ?? prompt.bound) + imageTokens + template;
    const requestInputCost = (inputTokens * price.input) / PER_MILLION;
    const requestOutputCost = (request.maxTokens * price.output) / PER_MILLION;
    perRequestInputTokens[index] = inputTokens;
    // Images are counted at a bound, never learned: such a request keeps its worst case.
    perRequestContentTokens[index] = prompt.images === 0 ? prompt.exact : null;
    perRequestCost[index] = requestInputCost + requestOutputCost;
    perRequestMaxCost[index] = (inputBound * price.input) / PER_MILLION + requestOutputCost;
    totalInputTokens += inputTokens;
    totalOutputTokens += request.maxTokens;
    toolTokens += prompt.extraTokens;
    images += prompt.images;
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
    ...(toolTokens > 0 ? { toolTokens } : {}),
    ...(images > 0 ? { images, imageTokens: images * imageBound } : {}),
    temporalActions: expectedTemporalActions(
      count,
      input.temporalActionPrice ?? DEFAULT_TEMPORAL_ACTION_PRICE_USD,
    ),
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
