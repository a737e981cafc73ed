/**
 * The fake Maritaca server's reading of a chat completions body: every field it understands is
 * checked the way Maritaca's FastAPI front end checks it, and refusals come back as the issues
 * of a FastAPI 422 (`{"detail": [{loc, msg, type}]}`), with pydantic's wording where pydantic
 * has one. Kept apart from the server so the rules read in one place.
 */

type Json = Record<string, unknown>;

/** One entry of a FastAPI 422 body's `detail` list. */
export interface FastApiIssue {
  loc: (string | number)[];
  msg: string;
  type: string;
}

/** A call an assistant message carries, as the conversation sends it back. */
export interface FakeToolCall {
  readonly id: string;
  readonly name: string;
  /** JSON text, as the model produced it. */
  readonly arguments: string;
}

/** A message reduced to what the fake counts and answers from. */
export interface FakeChatMessage {
  readonly role: string;
  /** The text content, or the text of each text block, in order. */
  readonly texts: readonly string[];
  /** Image blocks in the content. */
  readonly images: number;
  /** Calls an assistant message carries (empty for other roles). */
  readonly toolCalls: readonly FakeToolCall[];
  /** The call a `tool` message answers. */
  readonly toolCallId?: string;
}

/** A function offered in `tools`. */
export interface FakeChatTool {
  readonly name: string;
  /** The JSON schema of the function's arguments, when the tool gives one. */
  readonly parameters?: Json;
}

/** `tool_choice`: one of the three modes, or the function the model must call. */
export type FakeToolChoice = 'auto' | 'none' | 'required' | { readonly name: string };

/** `response_format`, with a `json_schema` format reduced to its name and schema. */
export type FakeResponseFormat =
  | { readonly type: 'text' }
  | { readonly type: 'json_object' }
  | { readonly type: 'json_schema'; readonly name: string; readonly schema: Json };

/** A chat completions request that passed every check. */
export interface FakeChatRequest {
  readonly model: string;
  readonly messages: readonly FakeChatMessage[];
  /** `max_tokens` as sent; the server applies its default when absent. */
  readonly maxTokens?: number;
  readonly tools?: readonly FakeChatTool[];
  /** `JSON.stringify` of the `tools` array as sent: what the prompt counts for the definitions. */
  readonly toolsJson?: string;
  readonly toolChoice?: FakeToolChoice;
  readonly responseFormat?: FakeResponseFormat;
  /** `JSON.stringify` of `response_format` as sent, unless its type is `text` (which adds nothing). */
  readonly responseFormatJson?: string;
  /** `JSON.stringify` of the whole body: what a deterministic tool call id is hashed from. */
  readonly canonical: string;
}

/** Names OpenAI-compatible APIs accept for functions and JSON schemas. */
export const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

/** Image types Maritaca takes in a base64 image block. */
export const IMAGE_MEDIA_TYPES: readonly string[] = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const TOOL_CHOICE_MODES: readonly string[] = ['auto', 'none', 'required'];
const RESPONSE_FORMAT_TYPES: readonly string[] = ['text', 'json_object', 'json_schema'];

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}

/** Absent and JSON `null` mean the same for an optional field, as in pydantic's `Optional[...]`. */
function isAbsent(value: unknown): value is undefined | null {
  return value === undefined || value === null;
}

function quoteAll(values: readonly string[]): string {
  const quoted = values.map((value) => `'${value}'`);
  return quoted.length <= 1 ? quoted.join('') : `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}`;
}

/** Collects issues; `string` and friends report what they found, pydantic-style, and say whether it passed. */
class Issues {
  readonly list: FastApiIssue[] = [];

  add(loc: (string | number)[], msg: string, type: string): void {
    this.list.push({ loc, msg, type });
  }

  /** A required string field. */
  string(value: unknown, loc: (string | number)[]): value is string {
    if (value === undefined || value === null) this.add(loc, 'Field required', 'missing');
    else if (typeof value !== 'string') this.add(loc, 'Input should be a valid string', 'string_type');
    else return true;
    return false;
  }

  /** A required object field. */
  object(value: unknown, loc: (string | number)[]): value is Json {
    if (value === undefined || value === null) this.add(loc, 'Field required', 'missing');
    else if (!isObject(value)) this.add(loc, 'Input should be a valid dictionary', 'dict_type');
    else return true;
    return false;
  }

  /** A required field that must hold one literal. */
  literal(value: unknown, expected: string, loc: (string | number)[]): boolean {
    if (value === undefined || value === null) this.add(loc, 'Field required', 'missing');
    else if (value !== expected) this.add(loc, `Input should be '${expected}'`, 'literal_error');
    else return true;
    return false;
  }

  /** The tag of a discriminated union; returns it when it is one of `tags`. */
  tag(value: Json, tags: readonly string[], loc: (string | number)[]): string | undefined {
    const tag = value.type;
    if (tag === undefined) {
      this.add(loc, "Unable to extract tag using discriminator 'type'", 'union_tag_not_found');
    } else if (typeof tag !== 'string' || !tags.includes(tag)) {
      this.add(
        loc,
        `Input tag '${String(tag)}' found using 'type' does not match any of the expected tags: ${tags
          .map((t) => `'${t}'`)
          .join(', ')}`,
        'union_tag_invalid',
      );
    } else {
      return tag;
    }
    return undefined;
  }

  /** A name for a function or a schema. */
  name(value: unknown, loc: (string | number)[]): value is string {
    if (!this.string(value, loc)) return false;
    if (FUNCTION_NAME.test(value)) return true;
    this.add(loc, `String should match pattern '${FUNCTION_NAME.source}'`, 'string_pattern_mismatch');
    return false;
  }
}

/** Standard, padded base64 of at least one byte: what Python's strict decoder accepts. */
function isNonEmptyBase64(data: string): boolean {
  return (
    data.length > 0 && data.length % 4 === 0 && BASE64.test(data) && Buffer.from(data, 'base64').length > 0
  );
}

function isJsonText(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function readImageSource(source: unknown, loc: (string | number)[], issues: Issues): void {
  if (!issues.object(source, loc)) return;
  const kind = issues.tag(source, ['base64', 'url'], loc);
  if (kind === 'base64') {
    const mediaType = source.media_type;
    if (isAbsent(mediaType)) issues.add([...loc, 'media_type'], 'Field required', 'missing');
    else if (typeof mediaType !== 'string' || !IMAGE_MEDIA_TYPES.includes(mediaType)) {
      issues.add([...loc, 'media_type'], `Input should be ${quoteAll(IMAGE_MEDIA_TYPES)}`, 'literal_error');
    }
    if (issues.string(source.data, [...loc, 'data']) && !isNonEmptyBase64(source.data)) {
      issues.add(
        [...loc, 'data'],
        'Value error, data must be non-empty, padded, standard base64',
        'value_error',
      );
    }
  } else if (kind === 'url' && issues.string(source.url, [...loc, 'url'])) {
    let protocol: string;
    try {
      protocol = new URL(source.url).protocol;
    } catch {
      issues.add([...loc, 'url'], 'Input should be a valid URL, relative URL without a base', 'url_parsing');
      return;
    }
    if (protocol !== 'http:' && protocol !== 'https:') {
      issues.add([...loc, 'url'], "URL scheme should be 'http' or 'https'", 'url_scheme');
    }
  }
}

/** Reads a `content` array; text goes to `texts`, and the image count is returned. */
function readBlocks(blocks: unknown[], loc: (string | number)[], texts: string[], issues: Issues): number {
  if (blocks.length === 0) {
    issues.add(loc, 'List should have at least 1 item after validation, not 0', 'too_short');
  }
  let images = 0;
  blocks.forEach((block, index) => {
    const at = [...loc, index];
    if (!isObject(block)) {
      issues.add(
        at,
        'Input should be a valid dictionary or object to extract fields from',
        'model_attributes_type',
      );
      return;
    }
    // Maritaca takes Anthropic-style image blocks only: an OpenAI `image_url` block sent
    // unconverted fails here, at its own location, as the real API refuses it.
    const kind = issues.tag(block, ['text', 'image'], at);
    if (kind === 'text') {
      if (issues.string(block.text, [...at, 'text'])) texts.push(block.text);
    } else if (kind === 'image') {
      images++;
      readImageSource(block.source, [...at, 'source'], issues);
    }
  });
  return images;
}

function readToolCalls(value: unknown, loc: (string | number)[], issues: Issues): FakeToolCall[] {
  if (!Array.isArray(value)) {
    issues.add(loc, 'Input should be a valid list', 'list_type');
    return [];
  }
  const calls: FakeToolCall[] = [];
  value.forEach((call: unknown, index) => {
    const at = [...loc, index];
    if (!issues.object(call, at)) return;
    const idOk = issues.string(call.id, [...at, 'id']);
    issues.literal(call.type, 'function', [...at, 'type']);
    if (!issues.object(call.function, [...at, 'function'])) return;
    const fn = call.function;
    const nameOk = issues.string(fn.name, [...at, 'function', 'name']);
    const argumentsOk = issues.string(fn.arguments, [...at, 'function', 'arguments']);
    if (argumentsOk && !isJsonText(fn.arguments as string)) {
      issues.add(
        [...at, 'function', 'arguments'],
        'Invalid JSON: arguments must be a JSON string',
        'json_invalid',
      );
    }
    if (idOk && nameOk && argumentsOk) {
      calls.push({ id: call.id as string, name: fn.name as string, arguments: fn.arguments as string });
    }
  });
  return calls;
}

function readMessage(message: unknown, index: number, issues: Issues): FakeChatMessage {
  const loc = ['body', 'messages', index];
  const fields = isObject(message) ? message : {};
  const role = fields.role;
  if (typeof role !== 'string') issues.add([...loc, 'role'], 'Field required', 'missing');
  const toolCalls =
    role === 'assistant' && !isAbsent(fields.tool_calls)
      ? readToolCalls(fields.tool_calls, [...loc, 'tool_calls'], issues)
      : [];
  const texts: string[] = [];
  let images = 0;
  const content = fields.content;
  if (typeof content === 'string') texts.push(content);
  else if (Array.isArray(content)) images = readBlocks(content, [...loc, 'content'], texts, issues);
  // An assistant turn that only calls tools has no text: OpenAI clients send null or nothing.
  else if (!(isAbsent(content) && role === 'assistant' && !isAbsent(fields.tool_calls))) {
    issues.add([...loc, 'content'], 'Input should be a valid string', 'string_type');
  }
  let toolCallId: string | undefined;
  if (role === 'tool' && issues.string(fields.tool_call_id, [...loc, 'tool_call_id'])) {
    toolCallId = fields.tool_call_id as string;
  }
  return {
    role: typeof role === 'string' ? role : '',
    texts,
    images,
    toolCalls,
    ...(toolCallId === undefined ? {} : { toolCallId }),
  };
}

function readTools(value: unknown, issues: Issues): FakeChatTool[] {
  const loc = ['body', 'tools'];
  if (!Array.isArray(value)) {
    issues.add(loc, 'Input should be a valid list', 'list_type');
    return [];
  }
  const tools: FakeChatTool[] = [];
  const seen = new Set<string>();
  value.forEach((tool: unknown, index) => {
    const at = [...loc, index];
    if (!issues.object(tool, at)) return;
    issues.literal(tool.type, 'function', [...at, 'type']);
    if (!issues.object(tool.function, [...at, 'function'])) return;
    const fn = tool.function;
    const nameOk = issues.name(fn.name, [...at, 'function', 'name']);
    if (!isAbsent(fn.description) && typeof fn.description !== 'string') {
      issues.add([...at, 'function', 'description'], 'Input should be a valid string', 'string_type');
    }
    const parameters = fn.parameters;
    if (!isAbsent(parameters) && !isObject(parameters)) {
      issues.add([...at, 'function', 'parameters'], 'Input should be a valid dictionary', 'dict_type');
    }
    if (!nameOk) return;
    const name = fn.name as string;
    if (seen.has(name)) {
      issues.add(
        [...at, 'function', 'name'],
        `Value error, function name '${name}' is used by more than one tool`,
        'value_error',
      );
    }
    seen.add(name);
    tools.push({ name, ...(isObject(parameters) ? { parameters } : {}) });
  });
  return tools;
}

function readToolChoice(value: unknown, issues: Issues): FakeToolChoice | undefined {
  const loc = ['body', 'tool_choice'];
  if (typeof value === 'string') {
    if (TOOL_CHOICE_MODES.includes(value)) return value as FakeToolChoice;
    issues.add(loc, `Input should be ${quoteAll(TOOL_CHOICE_MODES)}`, 'literal_error');
    return undefined;
  }
  if (!isObject(value)) {
    issues.add(loc, `Input should be ${quoteAll(TOOL_CHOICE_MODES)} or a valid dictionary`, 'union_type');
    return undefined;
  }
  const typeOk = issues.literal(value.type, 'function', [...loc, 'type']);
  if (!issues.object(value.function, [...loc, 'function'])) return undefined;
  const name = value.function.name;
  return issues.string(name, [...loc, 'function', 'name']) && typeOk ? { name } : undefined;
}

function readResponseFormat(value: unknown, issues: Issues): FakeResponseFormat | undefined {
  const loc = ['body', 'response_format'];
  if (!issues.object(value, loc)) return undefined;
  const type = issues.tag(value, RESPONSE_FORMAT_TYPES, loc);
  if (type === 'text' || type === 'json_object') return { type };
  if (type !== 'json_schema') return undefined;
  const at = [...loc, 'json_schema'];
  if (!issues.object(value.json_schema, at)) return undefined;
  const spec = value.json_schema;
  const nameOk = issues.name(spec.name, [...at, 'name']);
  const schemaOk = issues.object(spec.schema, [...at, 'schema']);
  if (!isAbsent(spec.strict) && typeof spec.strict !== 'boolean') {
    issues.add([...at, 'strict'], 'Input should be a valid boolean', 'bool_type');
  }
  if (!isAbsent(spec.description) && typeof spec.description !== 'string') {
    issues.add([...at, 'description'], 'Input should be a valid string', 'string_type');
  }
  return nameOk && schemaOk ? { type, name: spec.name as string, schema: spec.schema as Json } : undefined;
}

function checkPenalty(value: unknown, field: string, issues: Issues): void {
  const loc = ['body', field];
  if (isAbsent(value)) return;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    issues.add(loc, 'Input should be a valid number', 'float_type');
  } else if (value < -2) {
    issues.add(loc, 'Input should be greater than or equal to -2', 'greater_than_equal');
  } else if (value > 2) {
    issues.add(loc, 'Input should be less than or equal to 2', 'less_than_equal');
  }
}

function checkSeed(value: unknown, issues: Issues): void {
  if (isAbsent(value) || Number.isInteger(value)) return;
  if (typeof value === 'number' && Number.isFinite(value)) {
    issues.add(
      ['body', 'seed'],
      'Input should be a valid integer, got a number with a fractional part',
      'int_from_float',
    );
  } else {
    issues.add(['body', 'seed'], 'Input should be a valid integer', 'int_type');
  }
}

/**
 * The checks that relate fields to each other, which pydantic runs as model validators once
 * every field is valid (so FastAPI answers them 422 too, as `value_error`s): a `tool` message
 * must answer a call an earlier assistant message made, and a forcing `tool_choice` needs tools
 * and may only name one of them.
 */
function crossCheck(request: FakeChatRequest, issues: Issues): void {
  const calls = new Set<string>();
  request.messages.forEach((message, index) => {
    for (const call of message.toolCalls) calls.add(call.id);
    if (message.role === 'tool' && message.toolCallId !== undefined && !calls.has(message.toolCallId)) {
      issues.add(
        ['body', 'messages', index, 'tool_call_id'],
        `Value error, tool_call_id '${message.toolCallId}' answers no tool call of an earlier assistant message`,
        'value_error',
      );
    }
  });
  const choice = request.toolChoice;
  const tools = request.tools ?? [];
  if (choice === 'required' && tools.length === 0) {
    issues.add(['body', 'tool_choice'], "Value error, tool_choice 'required' needs tools", 'value_error');
  } else if (typeof choice === 'object' && !tools.some((tool) => tool.name === choice.name)) {
    issues.add(
      ['body', 'tool_choice'],
      `Value error, tool_choice names function '${choice.name}', which is not among tools`,
      'value_error',
    );
  }
}

/**
 * Checks a chat completions body the way Maritaca's FastAPI front end does: returns the request,
 * or the issues of a 422. Field checks come first; the cross-field checks run only when every
 * field passed, as pydantic's model validators do.
 */
export function parseFakeChatRequest(body: unknown): FakeChatRequest | FastApiIssue[] {
  if (!isObject(body)) {
    return [
      {
        loc: ['body'],
        msg: 'Input should be a valid dictionary or object to extract fields from',
        type: 'model_attributes_type',
      },
    ];
  }
  const issues = new Issues();
  const { model, messages, max_tokens: maxTokens } = body;
  if (isAbsent(model)) issues.add(['body', 'model'], 'Field required', 'missing');
  else if (typeof model !== 'string')
    issues.add(['body', 'model'], 'Input should be a valid string', 'string_type');
  let parsedMessages: FakeChatMessage[] = [];
  if (isAbsent(messages)) {
    issues.add(['body', 'messages'], 'Field required', 'missing');
  } else if (!Array.isArray(messages)) {
    issues.add(['body', 'messages'], 'Input should be a valid list', 'list_type');
  } else if (messages.length === 0) {
    issues.add(['body', 'messages'], 'List should have at least 1 item after validation, not 0', 'too_short');
  } else {
    parsedMessages = messages.map((message: unknown, index) => readMessage(message, index, issues));
  }
  if (!isAbsent(maxTokens) && !isPositiveInteger(maxTokens)) {
    issues.add(['body', 'max_tokens'], 'Input should be a positive integer', 'greater_than_equal');
  }
  const tools = isAbsent(body.tools) ? undefined : readTools(body.tools, issues);
  const toolChoice = isAbsent(body.tool_choice) ? undefined : readToolChoice(body.tool_choice, issues);
  const responseFormat = isAbsent(body.response_format)
    ? undefined
    : readResponseFormat(body.response_format, issues);
  checkSeed(body.seed, issues);
  checkPenalty(body.frequency_penalty, 'frequency_penalty', issues);
  checkPenalty(body.presence_penalty, 'presence_penalty', issues);
  if (issues.list.length > 0) return issues.list;
  const request: FakeChatRequest = {
    model: model as string,
    messages: parsedMessages,
    ...(isAbsent(maxTokens) ? {} : { maxTokens: maxTokens as number }),
    ...(tools === undefined ? {} : { tools, toolsJson: JSON.stringify(body.tools) }),
    ...(toolChoice === undefined ? {} : { toolChoice }),
    ...(responseFormat === undefined
      ? {}
      : {
          responseFormat,
          ...(responseFormat.type === 'text'
            ? {}
            : { responseFormatJson: JSON.stringify(body.response_format) }),
        }),
    canonical: JSON.stringify(body),
  };
  crossCheck(request, issues);
  return issues.list.length > 0 ? issues.list : request;
}
