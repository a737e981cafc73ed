import { z } from 'zod';
import type { InputIssue } from './schema';

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

/**
 * A price table: what each model costs and the day someone last checked the figures against
 * Maritaca's published prices, so an estimate can say how old its prices are.
 */
export interface PriceTable {
  /** Day the figures were last checked, `YYYY-MM-DD`. */
  readonly checkedOn: string;
  /** Currency of every price in the table; this package counts only in BRL. */
  readonly currency: typeof CURRENCY;
  /** Price and limits per model, keyed by Maritaca's model name. */
  readonly models: Readonly<Record<string, ModelPrice>>;
}

/** The table this release ships: {@link MODEL_PRICES}, checked on the day it carries. */
export const BUILT_IN_PRICES: PriceTable = {
  checkedOn: '2026-11-29',
  currency: CURRENCY,
  models: MODEL_PRICES,
};

/** Names of the models `table` prices, built-in ones first. */
export function knownModelsOf(table: PriceTable): string[] {
  return Object.keys(table.models);
}

/**
 * What a field naming a model outside the table is told, in the style of the other field
 * messages (`requests[3].model: must be one of sabia-4, …`).
 */
export function unknownModelMessage(knownModels: readonly string[]): string {
  return `must be one of ${knownModels.join(', ')}`;
}

/** A model name that the price table in use does not know. */
export class UnknownModelError extends Error {
  /** The name that was asked for. */
  readonly model: string;
  /** Every model the table knows. */
  readonly knownModels: readonly string[];

  constructor(model: string, knownModels: readonly string[]) {
    super(`unknown model ${JSON.stringify(model)}; known models: ${knownModels.join(', ')}`);
    this.name = 'UnknownModelError';
    this.model = model;
    this.knownModels = knownModels;
  }
}

/**
 * The price of `model` in `table`.
 *
 * @throws {UnknownModelError} naming the model and listing the known ones.
 * @example
 * modelPriceOf(BUILT_IN_PRICES, 'sabiazinho-4').output // => 4
 */
export function modelPriceOf(table: PriceTable, model: string): ModelPrice {
  // Own properties only: a model named "constructor" must not find Object.prototype's.
  const price = Object.hasOwn(table.models, model) ? table.models[model] : undefined;
  if (!price) throw new UnknownModelError(model, knownModelsOf(table));
  return price;
}

/** A price table file or option was refused; `issues` names every bad field. */
export class InvalidPriceTableError extends Error {
  /** Where the table came from: a file path, an environment variable or an option name. */
  readonly source: string;
  /** Every problem found; an empty `path` means the whole table (e.g. it is not JSON). */
  readonly issues: readonly InputIssue[];

  constructor(source: string, issues: readonly InputIssue[]) {
    const described = issues.map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message));
    super(`${source}: ${described.join('; ')}`);
    this.name = 'InvalidPriceTableError';
    this.source = source;
    this.issues = issues;
  }
}

const MODEL_PRICE_FIELDS = ['input', 'output', 'cachedInput', 'contextWindow', 'maxOutputTokens'] as const;
const TABLE_FIELDS = ['checkedOn', 'currency', 'models'] as const;

const brlPerMillion = z.number({ error: 'expected a number ≥ 0' }).min(0, { error: 'expected a number ≥ 0' });
const tokenCount = z
  .number({ error: 'expected a whole number > 0' })
  .int({ error: 'expected a whole number > 0' })
  .positive({ error: 'expected a whole number > 0' });

const modelPriceSchema = z
  .strictObject(
    {
      input: brlPerMillion,
      output: brlPerMillion,
      cachedInput: brlPerMillion.optional(),
      contextWindow: tokenCount,
      maxOutputTokens: tokenCount,
    },
    { error: 'expected an object with input, output, contextWindow and maxOutputTokens' },
  )
  .superRefine((price, ctx) => {
    // The client's context-window check assumes an answer of max_tokens fits the window.
    if (price.maxOutputTokens > price.contextWindow) {
      ctx.addIssue({
        code: 'custom',
        path: ['maxOutputTokens'],
        message: `expected at most contextWindow (${price.contextWindow})`,
      });
    }
  });

/** True for a `YYYY-MM-DD` string naming a day that exists (no 2026-02-30). */
function isCalendarDate(value: string): boolean {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!match) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
  return day <= days;
}

const priceTableSchema = z.strictObject(
  {
    checkedOn: z
      .string({ error: 'expected the day the prices were checked, as YYYY-MM-DD' })
      .refine(isCalendarDate, { error: 'expected a real date as YYYY-MM-DD' }),
    currency: z.literal(CURRENCY, { error: `expected "${CURRENCY}" (every cost in this package is in BRL)` }),
    models: z.record(z.string(), modelPriceSchema, { error: 'expected an object of model name to price' }),
  },
  { error: 'expected an object with checkedOn, currency and models' },
);

/** Formats a path as `models["sabia-4"].output`: model names in brackets, as they are keys, not fields. */
function pricePath(path: readonly PropertyKey[]): string {
  return path
    .map((key, index) =>
      index === 1 && path[0] === 'models'
        ? `[${JSON.stringify(String(key))}]`
        : `${index > 0 ? '.' : ''}${String(key)}`,
    )
    .join('');
}

/** Maritaca's model names: `sabia-4`, `sabia-3.1`, `sabiazinho-4-br-sp`. */
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The raw value at `path`, to tell a missing field from a wrong one (zod's issues omit the input). */
function valueAt(json: unknown, path: readonly PropertyKey[]): unknown {
  let value = json;
  for (const key of path) {
    if (!isObject(value) || !Object.hasOwn(value, key)) return undefined;
    value = value[key as string];
  }
  return value;
}

/**
 * Model names are checked on the raw object: a record schema would silently drop a key such as
 * `__proto__`, and a price that vanishes unannounced is worse than a refused file.
 */
function modelNameIssues(json: unknown): InputIssue[] {
  const models = isObject(json) ? json.models : undefined;
  if (!isObject(models)) return [];
  return Object.keys(models)
    .filter((name) => !MODEL_NAME.test(name))
    .map((name) => ({
      path: pricePath(['models', name]),
      message:
        'expected a model name: letters, digits, ".", "-", "_" or ":", starting with a letter or digit',
    }));
}

/** One issue per unknown field, so a typo such as `ouput` is named where it is. */
function priceIssues(json: unknown, error: z.ZodError): InputIssue[] {
  return error.issues.flatMap((issue): InputIssue[] => {
    if (issue.code === 'unrecognized_keys') {
      const known = issue.path.length === 0 ? TABLE_FIELDS : MODEL_PRICE_FIELDS;
      return issue.keys.map((key) => ({
        path: pricePath([...issue.path, key]),
        message: `unknown field (expected ${known.join(', ')})`,
      }));
    }
    const missing = valueAt(json, issue.path) === undefined;
    return [{ path: pricePath(issue.path), message: missing ? `missing: ${issue.message}` : issue.message }];
  });
}

/**
 * Validates a price table (a parsed prices file, or a table given as an option) and merges its
 * models over `base`: a model it names replaces that model's entry whole, a new name adds a
 * model, and models it leaves out keep `base`'s figures. The result carries the override's
 * `checkedOn`, since that is when its author checked the prices.
 *
 * @param source names the table in errors (a file path, or e.g. `prices option`).
 * @throws {InvalidPriceTableError} naming `source` and every bad field, e.g.
 *   `prices.json: models["sabia-4"].output: expected a number ≥ 0`.
 * @example
 * const table = parsePriceTable(
 *   { checkedOn: '2027-01-15', currency: 'BRL', models: { 'sabia-4': { input: 4, output: 16, contextWindow: 131072, maxOutputTokens: 32768 } } },
 *   'prices.json',
 * );
 * modelPriceOf(table, 'sabia-4').input // => 4; every other model keeps its built-in price
 */
export function parsePriceTable(
  json: unknown,
  source: string,
  base: PriceTable = BUILT_IN_PRICES,
): PriceTable {
  const parsed = priceTableSchema.safeParse(json);
  const issues = [...(parsed.success ? [] : priceIssues(json, parsed.error)), ...modelNameIssues(json)];
  if (!parsed.success || issues.length > 0) throw new InvalidPriceTableError(source, issues);
  return {
    checkedOn: parsed.data.checkedOn,
    currency: CURRENCY,
    models: { ...base.models, ...parsed.data.models },
  };
}

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
 * Price of a call in BRL from its token counts, at `table`'s prices (default: the built-in table).
 *
 * @throws {UnknownModelError} when `table` does not know `model`.
 * @example
 * priceOf('sabia-4', { promptTokens: 1_000_000, completionTokens: 0 }) // => 5
 */
export function priceOf(model: string, tokens: TokenCounts, table: PriceTable = BUILT_IN_PRICES): number {
  const price = modelPriceOf(table, model);
  const cached = Math.min(tokens.cachedPromptTokens ?? 0, tokens.promptTokens);
  const uncached = tokens.promptTokens - cached;
  const cachedRate = price.cachedInput ?? price.input;
  return (uncached * price.input + cached * cachedRate + tokens.completionTokens * price.output) / 1_000_000;
}

/** Sums BRL amounts without letting binary floating point drift show up in the 12th decimal. */
export function addCosts(a: number, b: number): number {
  return Math.round((a + b) * 1e9) / 1e9;
}
