import { estimateBatchCost } from '../activities/estimate-cost';
import { schemaProblem } from '../activities/structured-output';
import {
  DEFAULT_MAX_OUTPUT_TOKENS,
  DEFAULT_MODEL,
  completionsQuery,
  estimateInputOf,
  publicEstimate,
  type BatchEstimate,
  type BatchOptions,
  type BatchRequest,
  type ChatMessage,
  type ChatResult,
  type InputIssue,
  type PriceTable,
  type RequestOutcome,
  type ResponseFormat,
  type Tool,
} from '../shared';
import type { BatchHandle } from './batch-client';
import { InvalidBatchInputError, MaritacaBatchError, MaritacaRequestError } from './errors';
import {
  messageTexts,
  toChatMessage,
  toOpenAITool,
  toToolChoice,
  type SeedMessage,
  type SeedTool,
  type SeedToolChoice,
} from './langchain-messages';
import { validateBatchInput } from './validate';

/**
 * One input of the seed helpers: a list of messages (Maritaca's form, LangChain-style objects
 * `{type: 'human', content}`, tuples `['human', 'texto']` or bare strings, mixed as you like),
 * or a string taken as one user message.
 */
export type SeedInput = readonly SeedMessage[] | string;

/**
 * Structured output, as LangChain's `with_structured_output(schema, method=...)` asks for it:
 * each answer is parsed, checked against `schema` and put in `ChatResult.parsed` (read it with
 * {@link parsedOf}); an answer that does not match is asked again (`structuredOutputRetries`),
 * then fails the request with type `MaritacaInvalidStructuredOutput`.
 */
export interface StructuredOutputOptions {
  /** The JSON schema of the value to extract. */
  schema: Record<string, unknown>;
  /**
   * Name of the function (`functionCalling`) or of the `json_schema` format: default the schema's
   * `title` when it is a valid function name (as LangChain names it), else `extract`.
   */
  name?: string;
  /** What the function extracts (`functionCalling`); default the schema's `description`. */
  description?: string;
  /**
   * How the model is asked, default `functionCalling` (as `langchain-maritaca` defaults):
   * - `functionCalling`: a function `name` taking the schema as parameters, forced by `toolChoice`;
   *   the value is its arguments.
   * - `jsonMode`: `responseFormat: {type: 'json_object', schema}` (the schema is checked here,
   *   not sent). A JSON mode prompt must ask for JSON, so when no message of a request mentions
   *   "json" a system instruction asking for JSON that follows the schema (with the schema) is
   *   added: appended to a leading system message, else as a first one.
   * - `jsonSchema`: `responseFormat: {type: 'json_schema', json_schema: {name, schema}}`.
   */
  method?: 'functionCalling' | 'jsonMode' | 'jsonSchema';
}

/** Options shared by the seed helpers (the Python guide's names, camel-cased). */
export interface SeedBatchOptions {
  /** Calls in flight at once (default 5). */
  maxConcurrency?: number;
  /** Stop sequences for every request. */
  stop?: string | string[];
  /** Model (default `sabia-4`). */
  model?: string;
  /** `max_tokens` of each request (default 1000). */
  maxTokens?: number;
  /** Sampling temperature. */
  temperature?: number;
  /**
   * Budget (BRL) approved for the batch; default the estimate's `maxCost`, the most the batch can
   * cost. The helpers approve on your behalf: the guide's functions have no approval step.
   */
  budget?: number;
  /** Workflow id to use (default generated). */
  batchId?: string;
  /** Retry policy of each call. */
  retry?: BatchOptions['retry'];
  /** Functions the model may call: OpenAI tools as they are, or LangChain-style `{ name, description?, parameters }`. */
  tools?: readonly SeedTool[];
  /**
   * Whether and which tool the model must call: `'auto'`, `'none'`, `'required'` (or `'any'`),
   * `{ type: 'function', function: { name } }`, or just the name of the function to force.
   */
  toolChoice?: SeedToolChoice;
  /** Ask for a structured answer: see {@link StructuredOutputOptions}. */
  structuredOutput?: StructuredOutputOptions;
  /** The answer's format, as the batch options take it (not together with `structuredOutput`). */
  responseFormat?: ResponseFormat;
  /** Times an answer that does not match the requested JSON is asked again (default 2). */
  structuredOutputRetries?: number;
  /** Sampling seed, for answers that repeat. */
  seed?: number;
  /** Frequency penalty (-2 to 2). */
  frequencyPenalty?: number;
  /** Presence penalty (-2 to 2). */
  presencePenalty?: number;
  /** Tokens counted for each image in the estimate (default 2000). */
  imageTokenBound?: number;
}

/** Options of the guide's `abatch_estimate_cost`, plus what changes a prompt's size. */
export type SeedEstimateOptions = {
  /** Output tokens expected per request (default 1000). */
  maxOutputTokens?: number;
} & Pick<
  SeedBatchOptions,
  'model' | 'tools' | 'toolChoice' | 'structuredOutput' | 'responseFormat' | 'imageTokenBound'
>;

/** Chat features of the seed options in the batch options' form, and the JSON-mode prompt if any. */
interface SeedFeatures {
  options: Pick<BatchOptions, 'tools' | 'toolChoice' | 'responseFormat'>;
  /** The system instruction a JSON-mode request that never mentions JSON gets. */
  jsonInstruction?: string;
}

const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const METHODS = ['functionCalling', 'jsonMode', 'jsonSchema'] as const;

/**
 * Reads `tools`, `toolChoice`, `responseFormat` and `structuredOutput` of seed options.
 * Throws {@link InvalidBatchInputError} (paths under `options.`) when they contradict each other.
 */
function seedFeatures(options: SeedEstimateOptions): SeedFeatures {
  const tools = options.tools?.map(toOpenAITool);
  const toolChoice = options.toolChoice !== undefined ? toToolChoice(options.toolChoice) : undefined;
  const base: SeedFeatures['options'] = {
    ...(tools ? { tools } : {}),
    ...(toolChoice !== undefined ? { toolChoice } : {}),
    ...(options.responseFormat ? { responseFormat: options.responseFormat } : {}),
  };
  const structured = options.structuredOutput;
  if (structured === undefined) return { options: base };
  const issues: InputIssue[] = [];
  const issue = (path: string, message: string) => issues.push({ path: `options.${path}`, message });
  const method = structured.method ?? 'functionCalling';
  if (!(METHODS as readonly string[]).includes(method))
    issue('structuredOutput.method', `must be one of ${METHODS.join(', ')}`);
  const schema = structured.schema as unknown;
  const problem =
    typeof schema !== 'object' || schema === null || Array.isArray(schema)
      ? 'must be a JSON schema object'
      : schemaProblem(structured.schema);
  if (problem) issue('structuredOutput.schema', problem);
  const title = isObject(schema) ? schema.title : undefined;
  const name = structured.name ?? (typeof title === 'string' && TOOL_NAME.test(title) ? title : 'extract');
  if (!TOOL_NAME.test(name)) issue('structuredOutput.name', 'must be 1 to 64 letters, digits, _ or -');
  if (options.responseFormat !== undefined)
    issue('responseFormat', 'structuredOutput sets the response format: give one or the other');
  if (method === 'functionCalling') {
    if (toolChoice !== undefined)
      issue('toolChoice', 'structuredOutput forces its own function: leave toolChoice out');
    if (tools?.some((t) => t.function?.name === name))
      issue('structuredOutput.name', `"${name}" is already the name of one of the tools: give another name`);
  }
  if (issues.length > 0) throw new InvalidBatchInputError(issues);
  if (method === 'functionCalling') {
    // As LangChain turns a JSON schema into a function: the title names it and the description
    // describes it, so neither needs to stay in the parameters.
    const { title: _title, description, ...parameters } = structured.schema;
    const about = structured.description ?? (typeof description === 'string' ? description : undefined);
    const tool: Tool = {
      type: 'function',
      function: { name, ...(about !== undefined ? { description: about } : {}), parameters },
    };
    return {
      options: {
        ...base,
        tools: [...(tools ?? []), tool],
        toolChoice: { type: 'function', function: { name } },
      },
    };
  }
  if (method === 'jsonMode') {
    return {
      options: { ...base, responseFormat: { type: 'json_object', schema: structured.schema } },
      jsonInstruction:
        'Responda somente com um objeto JSON válido, sem texto antes ou depois, que siga este JSON ' +
        `schema: ${JSON.stringify(structured.schema)}`,
    };
  }
  return {
    options: {
      ...base,
      responseFormat: { type: 'json_schema', json_schema: { name, schema: structured.schema } },
    },
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The messages with the JSON-mode instruction, unless one of them already mentions JSON: a
 * leading system message gets it appended, otherwise it comes first as a system message.
 */
function withJsonInstruction(messages: ChatMessage[], instruction: string): ChatMessage[] {
  if (messageTexts(messages).some((text) => /json/i.test(text))) return messages;
  const [first, ...rest] = messages;
  if (first?.role === 'system' && typeof first.content === 'string') {
    return [{ ...first, content: `${first.content}\n\n${instruction}` }, ...rest];
  }
  if (first?.role === 'system' && Array.isArray(first.content)) {
    return [{ ...first, content: [...first.content, { type: 'text', text: instruction }] }, ...rest];
  }
  return [{ role: 'system', content: instruction }, ...messages];
}

/**
 * Turns seed inputs into batch requests (ids are the indices): messages in Maritaca's form, the
 * JSON-mode instruction added where `structuredOutput` asks for it.
 */
export function seedRequests(inputs: readonly SeedInput[], options: SeedBatchOptions = {}): BatchRequest[] {
  const { jsonInstruction } = seedFeatures(options);
  return inputs.map((input) => {
    const messages =
      typeof input === 'string' ? [{ role: 'user' as const, content: input }] : input.map(toChatMessage);
    return {
      messages: jsonInstruction ? withJsonInstruction(messages, jsonInstruction) : messages,
      ...(options.maxTokens !== undefined ? { maxTokens: options.maxTokens } : {}),
    };
  });
}

/** Batch options from seed options. */
export function seedBatchOptions(options: SeedBatchOptions, returnExceptions: boolean): BatchOptions {
  return {
    maxConcurrency: options.maxConcurrency ?? 5,
    returnExceptions,
    ...(options.stop !== undefined ? { stop: options.stop } : {}),
    ...(options.model !== undefined ? { model: options.model } : {}),
    ...(options.temperature !== undefined ? { temperature: options.temperature } : {}),
    ...(options.retry !== undefined ? { retry: options.retry } : {}),
    ...seedFeatures(options).options,
    ...(options.structuredOutputRetries !== undefined
      ? { structuredOutputRetries: options.structuredOutputRetries }
      : {}),
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
    ...(options.frequencyPenalty !== undefined ? { frequencyPenalty: options.frequencyPenalty } : {}),
    ...(options.presencePenalty !== undefined ? { presencePenalty: options.presencePenalty } : {}),
    ...(options.imageTokenBound !== undefined ? { imageTokenBound: options.imageTokenBound } : {}),
  };
}

/**
 * The structured value of a result: for a batch run with `structuredOutput` (or a JSON
 * `responseFormat`, or a forced function), the parsed JSON answer or the forced function's
 * arguments, already checked against the schema. Throws {@link MaritacaBatchError} for a result
 * of a request that asked for no structured output.
 *
 * @example
 * const pessoas = (await batches.abatchWithConcurrency(textos, { structuredOutput: { schema } }))
 *   .map((r) => parsedOf<Pessoa>(r));
 * // with returnExceptions: true, a failed slot holds an Error:
 * const valores = resultados.map((r) => (r instanceof Error ? r : parsedOf<Pessoa>(r)));
 */
export function parsedOf<T = unknown>(result: ChatResult): T {
  if (result.parsed === undefined) {
    throw new MaritacaBatchError(
      'This result has no structured value: its request asked for no structured output (give structuredOutput)',
    );
  }
  return result.parsed as T;
}

/** Outcome → the seed's slot value: the `ChatResult`, or a {@link MaritacaRequestError}. */
export function seedSlot(outcome: RequestOutcome): ChatResult | MaritacaRequestError {
  return outcome.ok ? outcome.result : new MaritacaRequestError(outcome);
}

/**
 * Follows a running batch, calling `callback(completed, total, result)` once per request that
 * finished successfully, in the order they finished, until the batch ends.
 */
export async function followCompletions(
  handle: BatchHandle,
  callback: (completed: number, total: number, result: ChatResult) => void | Promise<void>,
  pollIntervalMs: number,
): Promise<void> {
  let ended = false;
  const done = handle.result().then(
    () => (ended = true),
    () => (ended = true),
  );
  let from = 0;
  let reported = 0;
  for (;;) {
    // A read that starts after the batch ended sees every outcome, so an empty one means we are done.
    const endedBeforeRead = ended;
    const page = await handle.workflowHandle.query(completionsQuery, { from });
    for (const outcome of page.outcomes) {
      if (outcome.ok) await callback(++reported, page.total, outcome.result);
    }
    from = page.nextFrom;
    if (from >= page.total || (page.outcomes.length === 0 && endedBeforeRead)) return;
    if (page.outcomes.length > 0) continue;
    await Promise.race([done, new Promise((resolve) => setTimeout(resolve, pollIntervalMs))]);
  }
}

/**
 * The guide's `abatch_estimate_cost`: the estimate the workflow would make, computed locally with
 * the same estimator, without starting anything or calling the model. The model is checked
 * against `prices` (default: the table `loadPriceTable` gives). Give the same `tools`,
 * `structuredOutput` or `responseFormat` the batch will run with: they are part of the prompt.
 */
export function estimateSeedInputs(
  inputs: readonly SeedInput[],
  options: SeedEstimateOptions = {},
  prices?: PriceTable,
): BatchEstimate {
  const model = options.model ?? DEFAULT_MODEL;
  const maxOutputTokens = options.maxOutputTokens ?? DEFAULT_MAX_OUTPUT_TOKENS;
  const batchOptions: BatchOptions = {
    model,
    maxOutputTokens,
    ...seedFeatures(options).options,
    ...(options.imageTokenBound !== undefined ? { imageTokenBound: options.imageTokenBound } : {}),
  };
  const input = validateBatchInput(
    { requests: seedRequests(inputs, options), options: batchOptions },
    prices ? { prices } : {},
  );
  return publicEstimate(estimateBatchCost(estimateInputOf(input.requests!, input.options ?? {}), prices));
}
