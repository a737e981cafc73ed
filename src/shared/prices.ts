/**
 * Maritaca's list prices in BRL per million tokens, standard tier.
 *
 * `cachedInput` is what a prompt token served from Maritaca's prompt cache costs; models
 * without a published cached price are charged the full input price for those tokens.
 */
export interface ModelPrice {
  /** BRL per 1M input tokens. */
  readonly input: number;
  /** BRL per 1M output tokens. */
  readonly output: number;
  /** BRL per 1M cached input tokens, when Maritaca publishes one. */
  readonly cachedInput?: number;
  /** Context window in tokens (input plus output). */
  readonly contextWindow: number;
  /** Largest `max_tokens` the model accepts. */
  readonly maxOutputTokens: number;
}

/** Currency every cost in this package is expressed in. */
export const CURRENCY = 'BRL' as const;

const K = 1024;

/** Price and limits of every model this package knows, keyed by Maritaca's model name. */
export const MODEL_PRICES: Readonly<Record<string, ModelPrice>> = {
  'sabia-4': { input: 5, output: 20, cachedInput: 1.25, contextWindow: 128 * K, maxOutputTokens: 32 * K },
  'sabiazinho-4': { input: 1, output: 4, cachedInput: 0.25, contextWindow: 128 * K, maxOutputTokens: 32 * K },
  'sabia-4-thinking': {
    input: 5,
    output: 40,
    cachedInput: 1.25,
    contextWindow: 128 * K,
    maxOutputTokens: 32 * K,
  },
  'sabia-4-br-sp': { input: 6.5, output: 26, contextWindow: 128 * K, maxOutputTokens: 32 * K },
  'sabiazinho-4-br-sp': { input: 1.3, output: 5.2, contextWindow: 128 * K, maxOutputTokens: 32 * K },
  'sabia-4-thinking-br-sp': { input: 6.5, output: 52, contextWindow: 128 * K, maxOutputTokens: 32 * K },
  'sabia-3.1': { input: 5, output: 10, contextWindow: 32 * K, maxOutputTokens: 4 * K },
  'sabia-3': { input: 5, output: 10, contextWindow: 32 * K, maxOutputTokens: 4 * K },
  'sabiazinho-3': { input: 1, output: 3, contextWindow: 32 * K, maxOutputTokens: 4 * K },
};

/** Names of every model in {@link MODEL_PRICES}. */
export const KNOWN_MODELS: readonly string[] = Object.keys(MODEL_PRICES);

/** Model used when neither the request nor the batch options name one. */
export const DEFAULT_MODEL = 'sabia-4';

/** Token counts of one call, as Maritaca's `usage` block reports them. */
export interface TokenCounts {
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** Prompt tokens served from the prompt cache (a subset of `promptTokens`). */
  readonly cachedPromptTokens?: number;
}

/**
 * Price of a call in BRL from its token counts.
 *
 * @example
 * priceOf('sabia-4', { promptTokens: 1_000_000, completionTokens: 0 }) // => 5
 */
export function priceOf(model: string, tokens: TokenCounts): number {
  const price = MODEL_PRICES[model];
  if (!price) throw new Error(`No price known for model "${model}"`);
  const cached = Math.min(tokens.cachedPromptTokens ?? 0, tokens.promptTokens);
  const uncached = tokens.promptTokens - cached;
  const cachedRate = price.cachedInput ?? price.input;
  return (uncached * price.input + cached * cachedRate + tokens.completionTokens * price.output) / 1_000_000;
}

/** Sums BRL amounts without letting binary floating point drift show up in the 12th decimal. */
export function addCosts(a: number, b: number): number {
  return Math.round((a + b) * 1e9) / 1e9;
}
