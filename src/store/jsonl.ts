import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import {
  batchRequestSchema,
  unknownModelMessage,
  validateWith,
  type BatchRequest,
  type InputIssue,
  type RequestOutcome,
  type ToolCall,
} from '../shared';
import { InvalidBatchFileError, type BatchFileProblem } from './errors/invalid-batch-file-error';
import { MaritacaBatchError } from './errors/maritaca-batch-error';

/** Options of {@link parseBatchJsonl} and {@link parseBatchJsonlFile}. */
export interface ParseBatchJsonlOptions {
  /** Most problems kept in the thrown {@link InvalidBatchFileError} (all are counted). Default 20. */
  maxProblems?: number;
  /**
   * Models a line may name (e.g. `knownModelsOf(prices)`); any other is a problem of its line
   * that lists these. Unset: names are not checked, as the workers that page a file already
   * checked by the client do.
   */
  knownModels?: readonly string[];
  /**
   * Checks beyond the schema for each valid line (the client's: JSON schemas that compile, tool
   * choices that name a defined tool), with paths in request terms (`tools[0].function.parameters`);
   * each is reported against its line in the file's own field names.
   */
  requestIssues?: (request: BatchRequest) => readonly InputIssue[];
}

/** What {@link parseBatchJsonl} returns. */
export interface ParsedBatchFile {
  /** One request per non-blank line, in file order, ready for the batch input. */
  requests: BatchRequest[];
  /** Distinct models named by the lines, in order of first appearance (requests naming none are not counted). */
  models: string[];
}

/** The two line formats a batch file may use: OpenAI's Batch API input lines, or this package's short form. */
export type JsonlInputFormat = 'openai' | 'short';

/** One line of an OpenAI Batch API output file. */
export interface OpenAIBatchOutputLine {
  /** `<batchId>/<request id>` for files this package writes. */
  id: string;
  /** The request's id (its input line's `custom_id`). */
  custom_id: string;
  /** The HTTP answer; null when there was none (timeouts, connection errors). */
  response: {
    status_code: number;
    request_id: string;
    body: OpenAIChatCompletionBody | OpenAIErrorBody;
  } | null;
  /** Why there is no HTTP answer; null when there is one. */
  error: { code: string; message: string } | null;
}

/** The body of a successful answer, as OpenAI's chat completions endpoint returns it. */
export interface OpenAIChatCompletionBody {
  id: string;
  object: 'chat.completion';
  model: string;
  choices: {
    index: number;
    /** `content` is null when the answer only calls tools, as in OpenAI's output. */
    message: { role: 'assistant'; content: string | null; tool_calls?: ToolCall[] };
    finish_reason: string | null;
  }[];
  usage: {
    prompt_tokens: number;
    completion_tokens: number;
    total_tokens: number;
    prompt_tokens_details?: { cached_tokens: number };
  };
}

/** The body of a refused request. */
export interface OpenAIErrorBody {
  error: { message: string; type: string };
}

const DEFAULT_MAX_PROBLEMS = 20;
const CHAT_COMPLETIONS_URLS = ['/v1/chat/completions', '/chat/completions'];

type JsonObject = Record<string, unknown>;
type AddProblem = (field: string | undefined, message: string) => void;
type RequestField = keyof BatchRequest;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Keeps the first `max` problems but counts all, so a huge broken file stays cheap to report. */
class ProblemList {
  readonly kept: BatchFileProblem[] = [];
  total = 0;

  constructor(private readonly max: number) {}

  add(line: number, field: string | undefined, message: string): void {
    this.total += 1;
    if (this.kept.length < this.max)
      this.kept.push(field === undefined ? { line, message } : { line, field, message });
  }

  throwIfAny(file?: string): void {
    if (this.total > 0) throw new InvalidBatchFileError(this.kept, this.total, file);
  }
}

/** Non-blank lines with their 1-based physical numbers; tolerates a BOM and CRLF endings. */
function* contentLines(text: string): Generator<{ line: number; text: string }> {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  let start = 0;
  let line = 0;
  // Scanning by index instead of split() avoids a second copy of a 100 MB file as an array of lines.
  while (start <= body.length) {
    const end = body.indexOf('\n', start);
    const stop = end === -1 ? body.length : end;
    line += 1;
    let lineText = body.slice(start, stop);
    if (lineText.endsWith('\r')) lineText = lineText.slice(0, -1);
    if (lineText.trim() !== '') yield { line, text: lineText };
    if (end === -1) break;
    start = end + 1;
  }
}

function parseJsonLine(text: string, add: AddProblem): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    add(undefined, `not valid JSON (${err instanceof Error ? err.message : String(err)})`);
    return { ok: false };
  }
}

/**
 * Reads a field that has two accepted spellings. `null` counts as absent because OpenAI's API
 * takes `null` to mean "use the default".
 */
function pickAlias(
  source: JsonObject,
  names: readonly string[],
  prefix: string,
  add: AddProblem,
): { value: unknown; field: string } {
  let picked: { value: unknown; name: string } | undefined;
  for (const name of names) {
    const value = source[name];
    if (value === undefined || value === null) continue;
    if (!picked) picked = { value, name };
    else if (JSON.stringify(value) !== JSON.stringify(picked.value)) {
      add(
        `${prefix}${name}`,
        `conflicts with ${prefix}${picked.name} (${JSON.stringify(picked.value)}); give only one of them`,
      );
    }
  }
  return { value: picked?.value, field: `${prefix}${picked?.name ?? names[0]}` };
}

function optional(source: JsonObject, name: string): unknown {
  const value = source[name];
  // OpenAI takes null, and an empty tools list, to mean "not set".
  if (value === null || (name === 'tools' && Array.isArray(value) && value.length === 0)) return undefined;
  return value;
}

/**
 * Refuses fields that would change what the request means or what its answer looks like in a
 * way a batch cannot keep, so a file written for OpenAI never runs quietly as something else.
 */
function checkUnsupported(source: JsonObject, prefix: string, add: AddProblem): void {
  const { n, stream, functions, function_call: functionCall } = source;
  if (n !== undefined && n !== null && n !== 1) {
    add(`${prefix}n`, `only one completion per request is supported (got ${JSON.stringify(n)})`);
  }
  if (stream === true) add(`${prefix}stream`, 'streaming is not supported in a batch');
  if (functions !== undefined && functions !== null) {
    add(`${prefix}functions`, 'the legacy "functions" field is not supported: give the same as "tools"');
  }
  if (functionCall !== undefined && functionCall !== null) {
    add(`${prefix}function_call`, 'the legacy "function_call" field is not supported: use "tool_choice"');
  }
}

/** A line turned into a request-shaped object, plus where each request field came from in the line. */
interface Converted {
  candidate: Partial<Record<RequestField, unknown>>;
  fields: Record<RequestField, string>;
}

function withDefined(entries: [RequestField, unknown][]): Partial<Record<RequestField, unknown>> {
  const out: Partial<Record<RequestField, unknown>> = {};
  for (const [key, value] of entries) if (value !== undefined) out[key] = value;
  return out;
}

function convertOpenAILine(line: JsonObject, add: AddProblem): Converted | undefined {
  if (line.method !== 'POST') add('method', `must be "POST" (got ${JSON.stringify(line.method)})`);
  if (typeof line.url !== 'string' || !CHAT_COMPLETIONS_URLS.includes(line.url)) {
    add('url', `must be "/v1/chat/completions" (got ${JSON.stringify(line.url)})`);
  }
  const body = line.body;
  if (!isObject(body)) {
    add('body', 'must be an object holding the chat completion request');
    return undefined;
  }
  checkUnsupported(body, 'body.', add);
  const maxTokens = pickAlias(body, ['max_tokens', 'max_completion_tokens'], 'body.', add);
  return {
    candidate: withDefined([
      ['id', optional(line, 'custom_id')],
      ['messages', optional(body, 'messages')],
      ['model', optional(body, 'model')],
      ['maxTokens', maxTokens.value],
      ['temperature', optional(body, 'temperature')],
      ['topP', optional(body, 'top_p')],
      ['stop', optional(body, 'stop')],
      ['tools', optional(body, 'tools')],
      ['toolChoice', optional(body, 'tool_choice')],
      ['responseFormat', optional(body, 'response_format')],
      ['seed', optional(body, 'seed')],
      ['frequencyPenalty', optional(body, 'frequency_penalty')],
      ['presencePenalty', optional(body, 'presence_penalty')],
    ]),
    fields: {
      id: 'custom_id',
      messages: 'body.messages',
      model: 'body.model',
      maxTokens: maxTokens.field,
      temperature: 'body.temperature',
      topP: 'body.top_p',
      stop: 'body.stop',
      tools: 'body.tools',
      toolChoice: 'body.tool_choice',
      responseFormat: 'body.response_format',
      seed: 'body.seed',
      frequencyPenalty: 'body.frequency_penalty',
      presencePenalty: 'body.presence_penalty',
    },
  };
}

function convertShortLine(line: JsonObject, add: AddProblem): Converted {
  checkUnsupported(line, '', add);
  const maxTokens = pickAlias(line, ['maxTokens', 'max_tokens'], '', add);
  const topP = pickAlias(line, ['topP', 'top_p'], '', add);
  const toolChoice = pickAlias(line, ['toolChoice', 'tool_choice'], '', add);
  const responseFormat = pickAlias(line, ['responseFormat', 'response_format'], '', add);
  const frequencyPenalty = pickAlias(line, ['frequencyPenalty', 'frequency_penalty'], '', add);
  const presencePenalty = pickAlias(line, ['presencePenalty', 'presence_penalty'], '', add);
  return {
    candidate: withDefined([
      ['id', optional(line, 'id')],
      ['messages', optional(line, 'messages')],
      ['model', optional(line, 'model')],
      ['maxTokens', maxTokens.value],
      ['temperature', optional(line, 'temperature')],
      ['topP', topP.value],
      ['stop', optional(line, 'stop')],
      ['tools', optional(line, 'tools')],
      ['toolChoice', toolChoice.value],
      ['responseFormat', responseFormat.value],
      ['seed', optional(line, 'seed')],
      ['frequencyPenalty', frequencyPenalty.value],
      ['presencePenalty', presencePenalty.value],
    ]),
    fields: {
      id: 'id',
      messages: 'messages',
      model: 'model',
      maxTokens: maxTokens.field,
      temperature: 'temperature',
      topP: topP.field,
      stop: 'stop',
      tools: 'tools',
      toolChoice: toolChoice.field,
      responseFormat: responseFormat.field,
      seed: 'seed',
      frequencyPenalty: frequencyPenalty.field,
      presencePenalty: presencePenalty.field,
    },
  };
}

/** Any of these keys marks an OpenAI Batch API line; everything else is read as the short form. */
function isOpenAILine(line: JsonObject): boolean {
  return 'body' in line || 'custom_id' in line || 'method' in line || 'url' in line;
}

/** Renames a schema path such as `maxTokens` or `messages[0].role` into the line's own terms. */
function toFilePath(path: string, fields: Record<RequestField, string>): string {
  const match = /^([A-Za-z]+)(.*)$/.exec(path);
  const head = match?.[1];
  if (!match || head === undefined || !(head in fields)) return path;
  return fields[head as RequestField] + (match[2] ?? '');
}

/**
 * Parses a JSONL batch file into batch requests, refusing the whole file when any line is bad.
 *
 * Each non-blank line is one request, in either format (they may be mixed):
 * - OpenAI Batch API input: `{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}`;
 * - short form: `{"id"?, "messages", "model"?, "maxTokens"? | "max_tokens"?, "temperature"?, "topP"?, "stop"?}`.
 *
 * Requests without an id get their position (`"0"`, `"1"`, …) from the workflow, so ids are
 * checked for duplicates the same way here.
 *
 * @throws {InvalidBatchFileError} listing each problem by line and field, e.g.
 *   `line 12: body.messages[0].role: must be one of system, user, assistant`.
 * @example
 * const { requests, models } = parseBatchJsonl(
 *   '{"custom_id":"req-1","method":"POST","url":"/v1/chat/completions",' +
 *     '"body":{"model":"sabia-4","messages":[{"role":"user","content":"Oi"}],"max_tokens":50}}\n',
 * );
 * // requests: [{ id: 'req-1', model: 'sabia-4', messages: [...], maxTokens: 50 }], models: ['sabia-4']
 */
export function parseBatchJsonl(text: string, options: ParseBatchJsonlOptions = {}): ParsedBatchFile {
  const maxProblems = options.maxProblems ?? DEFAULT_MAX_PROBLEMS;
  if (!Number.isInteger(maxProblems) || maxProblems < 1) {
    throw new RangeError(`maxProblems must be a positive integer (got ${maxProblems})`);
  }
  const problems = new ProblemList(maxProblems);
  const knownModels = options.knownModels && new Set(options.knownModels);
  const requests: BatchRequest[] = [];
  const models = new Set<string>();
  const ids = new Map<string, { line: number; explicit: boolean }>();
  let position = 0;

  for (const { line, text: lineText } of contentLines(text)) {
    const index = position;
    position += 1;
    const add: AddProblem = (field, message) => problems.add(line, field, message);
    const parsed = parseJsonLine(lineText, add);
    if (!parsed.ok) continue;
    if (!isObject(parsed.value)) {
      add(undefined, 'must be a JSON object (one request per line)');
      continue;
    }
    const converted = isOpenAILine(parsed.value)
      ? convertOpenAILine(parsed.value, add)
      : convertShortLine(parsed.value, add);
    if (!converted) continue;
    const { candidate, fields } = converted;

    const explicitId = typeof candidate.id === 'string' && candidate.id !== '' ? candidate.id : undefined;
    if (candidate.id === undefined || explicitId !== undefined) {
      const id = explicitId ?? String(index);
      const first = ids.get(id);
      if (!first) ids.set(id, { line, explicit: explicitId !== undefined });
      else if (explicitId !== undefined && first.explicit) {
        add(fields.id, `duplicate id ${JSON.stringify(id)} (also used on line ${first.line})`);
      } else if (explicitId !== undefined) {
        add(
          fields.id,
          `id ${JSON.stringify(id)} is also the id line ${first.line} gets from its position, as it has none`,
        );
      } else {
        add(
          undefined,
          `this request has no id, so it gets ${JSON.stringify(id)} from its position, but line ${first.line} already uses that id`,
        );
      }
    }

    const validated = validateWith(batchRequestSchema, candidate);
    // Named beside the line's other problems, so one pass over the file finds them all.
    const model = candidate.model;
    const unknownModel =
      knownModels !== undefined && typeof model === 'string' && model !== '' && !knownModels.has(model);
    if (unknownModel) add(fields.model, unknownModelMessage(options.knownModels!));
    if (!validated.ok) {
      for (const issue of validated.issues) add(toFilePath(issue.path, fields), issue.message);
      continue;
    }
    if (unknownModel) continue;
    const extra = options.requestIssues?.(validated.value) ?? [];
    for (const issue of extra) add(toFilePath(issue.path, fields), issue.message);
    if (extra.length > 0) continue;
    requests.push(validated.value);
    if (validated.value.model !== undefined) models.add(validated.value.model);
  }

  if (position === 0) problems.add(0, undefined, 'the file contains no requests');
  problems.throwIfAny();
  return { requests, models: [...models] };
}

/** Finds the first line holding bytes that are not UTF-8, so the refusal can point at it. */
function firstNonUtf8Line(bytes: Buffer): number {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let start = 0;
  for (let line = 1; ; line += 1) {
    const end = bytes.indexOf(0x0a, start);
    try {
      decoder.decode(bytes.subarray(start, end === -1 ? bytes.length : end));
    } catch {
      return line;
    }
    if (end === -1) return 0;
    start = end + 1;
  }
}

/**
 * Reads a JSONL batch file from disk and parses it with {@link parseBatchJsonl}. The file is read
 * whole, which is fine for files up to about 100 MB.
 *
 * @throws {MaritacaBatchError} naming the path when the file cannot be read.
 * @throws {InvalidBatchFileError} (with `file` set) when the file is not UTF-8 or any line is bad.
 * @example
 * const { requests } = await parseBatchJsonlFile('perguntas.jsonl');
 * const handle = await client.start(requests, { model: 'sabiazinho-4' });
 */
export async function parseBatchJsonlFile(
  path: string,
  options: ParseBatchJsonlOptions = {},
): Promise<ParsedBatchFile> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new MaritacaBatchError(`Cannot read batch file ${JSON.stringify(path)}: ${reason}`, { cause: err });
  }
  let text: string;
  try {
    // Decoding strictly refuses a mis-encoded file instead of sending U+FFFD garbage to the model.
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new InvalidBatchFileError(
      [{ line: firstNonUtf8Line(bytes), message: 'not valid UTF-8 text (save the file as UTF-8)' }],
      1,
      path,
    );
  }
  try {
    return parseBatchJsonl(text, options);
  } catch (err) {
    if (err instanceof InvalidBatchFileError)
      throw new InvalidBatchFileError(err.problems, err.totalProblems, path);
    throw err;
  }
}

/**
 * Formats one request outcome as a line of an OpenAI Batch API output file (no newline).
 *
 * The workflow does not keep Maritaca's completion id, so `<batchId>/<request id>` stands in for
 * it and for the HTTP request id; both are unique across batches.
 *
 * @example
 * for (const outcome of result.results) out.write(toOpenAIBatchOutputLine(outcome, batchId) + '\n');
 */
export function toOpenAIBatchOutputLine(outcome: RequestOutcome, batchId: string): string {
  const requestId = `${batchId}/${outcome.id}`;
  let line: OpenAIBatchOutputLine;
  if (outcome.ok) {
    const { generations, llmOutput } = outcome.result;
    const usage = llmOutput.tokenUsage;
    line = {
      id: requestId,
      custom_id: outcome.id,
      response: {
        status_code: 200,
        request_id: requestId,
        body: {
          id: requestId,
          object: 'chat.completion',
          model: llmOutput.model,
          choices: generations.map((generation, index) => ({
            index,
            message: generation.message.tool_calls
              ? {
                  role: 'assistant',
                  content: generation.text === '' ? null : generation.text,
                  tool_calls: generation.message.tool_calls,
                }
              : { role: 'assistant', content: generation.text },
            finish_reason: generation.generationInfo.finishReason,
          })),
          usage: {
            prompt_tokens: usage.promptTokens,
            completion_tokens: usage.completionTokens,
            total_tokens: usage.totalTokens,
            ...(usage.cachedPromptTokens !== undefined
              ? { prompt_tokens_details: { cached_tokens: usage.cachedPromptTokens } }
              : {}),
          },
        },
      },
      error: null,
    };
  } else if (outcome.error.status !== undefined) {
    line = {
      id: requestId,
      custom_id: outcome.id,
      response: {
        status_code: outcome.error.status,
        request_id: requestId,
        body: { error: { message: outcome.error.message, type: outcome.error.type } },
      },
      error: null,
    };
  } else {
    line = {
      id: requestId,
      custom_id: outcome.id,
      response: null,
      error: { code: outcome.error.type, message: outcome.error.message },
    };
  }
  return JSON.stringify(line);
}

/**
 * Formats a batch's outcomes as an OpenAI Batch API output file: one line each, in the order
 * given, ending with a newline (empty string for no outcomes).
 *
 * @example
 * await writeFile('saida.jsonl', toOpenAIBatchOutput(result.results, batchId));
 */
export function toOpenAIBatchOutput(outcomes: readonly RequestOutcome[], batchId: string): string {
  if (outcomes.length === 0) return '';
  return outcomes.map((outcome) => toOpenAIBatchOutputLine(outcome, batchId)).join('\n') + '\n';
}

// Checks only what a reader relies on; every other field is kept as the file has it.
const outputLineSchema = z.object({
  id: z.string({ error: 'must be a string' }),
  custom_id: z.string({ error: 'must be a string' }),
  response: z
    .looseObject({
      status_code: z.number({ error: 'must be a number' }).int(),
      request_id: z.string({ error: 'must be a string' }),
      body: z.looseObject({}, { error: 'must be an object' }),
    })
    .nullable(),
  error: z
    .looseObject({
      code: z.string({ error: 'must be a string' }),
      message: z.string({ error: 'must be a string' }),
    })
    .nullable(),
});

/**
 * Parses an OpenAI Batch API output file (as {@link toOpenAIBatchOutput} writes it, or as OpenAI
 * returns it) into its lines, with every field kept as written.
 *
 * @throws {InvalidBatchFileError} when a line is not JSON or lacks `id`, `custom_id`, `response` or `error`.
 * @example
 * const answers = readOpenAIBatchOutput(await readFile('saida.jsonl', 'utf8'));
 * const failed = answers.filter((a) => a.error !== null || a.response?.status_code !== 200);
 */
export function readOpenAIBatchOutput(
  text: string,
  options: ParseBatchJsonlOptions = {},
): OpenAIBatchOutputLine[] {
  const problems = new ProblemList(options.maxProblems ?? DEFAULT_MAX_PROBLEMS);
  const lines: OpenAIBatchOutputLine[] = [];
  for (const { line, text: lineText } of contentLines(text)) {
    const add: AddProblem = (field, message) => problems.add(line, field, message);
    const parsed = parseJsonLine(lineText, add);
    if (!parsed.ok) continue;
    const validated = validateWith(outputLineSchema, parsed.value);
    if (!validated.ok) {
      for (const issue of validated.issues) add(issue.path, issue.message);
      continue;
    }
    lines.push(parsed.value as OpenAIBatchOutputLine);
  }
  problems.throwIfAny();
  return lines;
}

/**
 * Writes requests as JSONL input lines, the inverse of {@link parseBatchJsonl}: parsing the result
 * gives the same requests back. Requests are written as given, not validated. A request without
 * an id gets no `custom_id` in the OpenAI format, so its id stays positional after the round trip.
 *
 * @example
 * toJsonlInputLines([{ id: 'q1', messages: [{ role: 'user', content: 'Oi' }], maxTokens: 20 }], 'short');
 * // => '{"id":"q1","messages":[{"role":"user","content":"Oi"}],"maxTokens":20}\n'
 */
export function toJsonlInputLines(requests: readonly BatchRequest[], format: JsonlInputFormat): string {
  if (requests.length === 0) return '';
  return (
    requests
      .map((request) =>
        JSON.stringify(
          format === 'openai'
            ? {
                custom_id: request.id,
                method: 'POST',
                url: '/v1/chat/completions',
                body: {
                  model: request.model,
                  messages: request.messages,
                  max_tokens: request.maxTokens,
                  temperature: request.temperature,
                  top_p: request.topP,
                  stop: request.stop,
                },
              }
            : {
                id: request.id,
                messages: request.messages,
                model: request.model,
                maxTokens: request.maxTokens,
                temperature: request.temperature,
                topP: request.topP,
                stop: request.stop,
              },
        ),
      )
      .join('\n') + '\n'
  );
}
