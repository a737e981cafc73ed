import type { ChatMessage, ContentBlock, Tool, ToolCall, ToolChoice } from '../shared';

/**
 * The roles the seed helpers understand: Maritaca's (OpenAI's) and LangChain's message type
 * names, mapped as LangChain maps them (`human` → `user`, `ai` → `assistant`, `developer` →
 * `system`).
 */
export type SeedMessageType = 'human' | 'user' | 'ai' | 'assistant' | 'system' | 'developer' | 'tool';

/**
 * An image in LangChain's standard block form, converted to Maritaca's `{type: 'image', source}`
 * as `langchain-maritaca` converts it: inline base64 data (`mime_type` defaults to PNG) or a URL.
 */
export type LangChainImageBlock =
  | { type: 'image'; base64: string; mime_type?: string }
  | { type: 'image'; url: string }
  | { type: 'image'; source_type: 'base64'; data: string; mime_type?: string }
  | { type: 'image'; source_type: 'url'; url: string };

/**
 * Content the seed helpers accept: a string, or blocks: Maritaca's text and image blocks,
 * OpenAI `image_url` blocks, LangChain's standard image blocks, and bare strings (text blocks).
 */
export type SeedContent = string | readonly (ContentBlock | LangChainImageBlock | string)[];

/** A call an `ai` message made, as LangChain holds it: `args` parsed, not JSON text. */
export interface LangChainToolCall {
  id: string;
  name: string;
  args: Record<string, unknown>;
  /** LangChain tags its calls `'tool_call'`; ignored. */
  type?: 'tool_call';
}

/** The fields of a LangChain-style message beside its type. */
export interface LangChainMessageFields {
  content: SeedContent | null;
  /** Calls an `ai` message made, LangChain-style (`args`) or in OpenAI's wire form (`function.arguments`). */
  tool_calls?: readonly (LangChainToolCall | ToolCall)[];
  /** The call a `tool` message answers. */
  tool_call_id?: string;
}

/**
 * A message as LangChain writes one without its classes: `{type: 'human', content}` (the message
 * type name, as `HumanMessage` reports it) or a dict `{role: 'human', content}`. Other fields
 * LangChain messages carry (`id`, `name`, `additional_kwargs`, `response_metadata`, ...) are
 * ignored.
 */
export type LangChainMessage = LangChainMessageFields &
  ({ type: SeedMessageType; role?: undefined } | { role: SeedMessageType; type?: undefined });

/** A message as LangChain serialises one (`messages_to_dict` in Python, `toDict()` in JS). */
export interface SerializedLangChainMessage {
  type: SeedMessageType;
  data: LangChainMessageFields;
}

/** LangChain's message-like tuple: `['human', 'Qual é a capital do Brasil?']`. */
export type MessageTuple = readonly [type: Exclude<SeedMessageType, 'tool'>, content: SeedContent];

/**
 * One message of a seed input: Maritaca's own form, a LangChain-style object, a tuple, or a bare
 * string (a user message, as in LangChain).
 */
export type SeedMessage = ChatMessage | LangChainMessage | SerializedLangChainMessage | MessageTuple | string;

/**
 * A tool in LangChain's plain form (what `convert_to_openai_tool` takes as a dict):
 * `{ name, description?, parameters }`, `parameters` a JSON schema.
 */
export interface LangChainTool {
  name: string;
  description?: string;
  parameters: Record<string, unknown>;
}

/** A tool the seed helpers accept: OpenAI's `{type: 'function', function}` as is, or {@link LangChainTool}. */
export type SeedTool = Tool | LangChainTool;

/**
 * `toolChoice` as the seed helpers accept it: Maritaca's forms, `'any'` (LangChain's name for
 * `'required'`), or the bare name of the function to force.
 */
// `string & {}` keeps the literal names in editors' completions while any name is accepted.
export type SeedToolChoice = ToolChoice | 'any' | (string & {});

const ROLES: Readonly<Record<string, ChatMessage['role']>> = {
  human: 'user',
  user: 'user',
  ai: 'assistant',
  assistant: 'assistant',
  system: 'system',
  developer: 'system',
  tool: 'tool',
};

type Loose = Record<string, unknown>;

function isObject(value: unknown): value is Loose {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A seed message in Maritaca's form. What cannot be read is passed on as it stands (an unknown
 * role kept as the role, say), so the batch validation names the bad field instead of this
 * function guessing.
 *
 * @example
 * toChatMessage(['human', 'Olá']); // { role: 'user', content: 'Olá' }
 * toChatMessage({ type: 'ai', content: '', tool_calls: [{ id: 'c1', name: 'f', args: { x: 1 } }] });
 * // { role: 'assistant', content: '', tool_calls: [{ id: 'c1', type: 'function',
 * //   function: { name: 'f', arguments: '{"x":1}' } }] }
 */
export function toChatMessage(message: SeedMessage): ChatMessage {
  const value: unknown = message;
  if (typeof value === 'string') return { role: 'user', content: value };
  if (Array.isArray(value)) {
    if (value.length !== 2 || typeof value[0] !== 'string') return value as unknown as ChatMessage;
    return { role: roleOf(value[0]), content: toContent(value[1]) } as ChatMessage;
  }
  if (!isObject(value)) return value as ChatMessage;
  // `messages_to_dict` (Python) and `toDict()` (JS) nest the fields under `data`.
  const fields = !('content' in value) && isObject(value.data) ? value.data : value;
  const name = typeof value.role === 'string' ? value.role : value.type;
  const out: Loose = {
    role: typeof name === 'string' ? roleOf(name) : name,
    content: toContent(fields.content),
  };
  const calls = fields.tool_calls;
  // LangChain gives every AIMessage a `tool_calls` list, empty when it called nothing.
  if (Array.isArray(calls) && calls.length > 0) out.tool_calls = calls.map(toToolCall);
  else if (calls !== undefined && !Array.isArray(calls)) out.tool_calls = calls;
  if (fields.tool_call_id !== undefined) out.tool_call_id = fields.tool_call_id;
  return out as ChatMessage;
}

function roleOf(name: string): string {
  return ROLES[name] ?? name;
}

function toContent(content: unknown): unknown {
  if (!Array.isArray(content)) return content;
  return content.map((block: unknown) => {
    if (typeof block === 'string') return { type: 'text', text: block };
    if (isObject(block) && block.type === 'image' && block.source === undefined) return toImageBlock(block);
    return block;
  });
}

function toImageBlock(block: Loose): unknown {
  const mediaType = typeof block.mime_type === 'string' ? block.mime_type : 'image/png';
  if (typeof block.base64 === 'string') {
    return { type: 'image', source: { type: 'base64', media_type: mediaType, data: block.base64 } };
  }
  if (block.source_type === 'base64' && typeof block.data === 'string') {
    return { type: 'image', source: { type: 'base64', media_type: mediaType, data: block.data } };
  }
  if (typeof block.url === 'string') return { type: 'image', source: { type: 'url', url: block.url } };
  return block;
}

function toToolCall(call: unknown): unknown {
  if (!isObject(call) || call.function !== undefined || typeof call.name !== 'string') return call;
  // `langchain-maritaca` sends `json.dumps(args)`; args already given as text are kept.
  const args = typeof call.args === 'string' ? call.args : JSON.stringify(call.args ?? {});
  return { id: call.id, type: 'function', function: { name: call.name, arguments: args } };
}

/**
 * A seed tool in OpenAI's form: an OpenAI tool as it is, a {@link LangChainTool} wrapped. Anything
 * else is passed on for the batch validation to name.
 */
export function toOpenAITool(tool: SeedTool): Tool {
  const value: unknown = tool;
  if (!isObject(value) || value.type === 'function' || typeof value.name !== 'string') return tool as Tool;
  return {
    type: 'function',
    function: {
      name: value.name,
      ...(typeof value.description === 'string' ? { description: value.description } : {}),
      ...(value.parameters !== undefined ? { parameters: value.parameters as Record<string, unknown> } : {}),
    },
  };
}

/**
 * A seed `toolChoice` in Maritaca's form: `'auto'`, `'none'` and `'required'` as they are, `'any'`
 * as `'required'` (as LangChain reads it), any other string as the function to force.
 */
export function toToolChoice(choice: SeedToolChoice): ToolChoice {
  if (typeof choice !== 'string') return choice;
  const modes: readonly string[] = ['auto', 'none', 'required'];
  if (modes.includes(choice)) return choice as 'auto' | 'none' | 'required';
  if (choice === 'any') return 'required';
  return { type: 'function', function: { name: choice } };
}

/** The texts of messages in Maritaca's form: string contents and text blocks. */
export function messageTexts(messages: readonly ChatMessage[]): string[] {
  return messages.flatMap((m) => {
    if (typeof m.content === 'string') return [m.content];
    if (!Array.isArray(m.content)) return [];
    return m.content.flatMap((b) => (b.type === 'text' ? [b.text] : []));
  });
}
