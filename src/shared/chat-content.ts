import { IMAGE_DATA_URI } from './schema';
import type { ChatMessage, ResponseFormat, CallMaritacaInput } from './types';

/** One content block of a message: text, or an image in Maritaca's form (after conversion). */
export type ContentBlock = Exclude<ChatMessage['content'], string | null>[number];

/**
 * The message as Maritaca takes it: OpenAI `image_url` blocks become Maritaca's image blocks
 * (a data URI as base64 data, any other URL by reference); everything else is kept as is.
 */
export function toMaritacaMessage(message: ChatMessage): ChatMessage {
  if (!Array.isArray(message.content) || !message.content.some((b) => b.type === 'image_url')) return message;
  return { ...message, content: message.content.map(toMaritacaBlock) };
}

function toMaritacaBlock(block: ContentBlock): ContentBlock {
  if (block.type !== 'image_url') return block;
  const url = block.image_url.url;
  const inline = IMAGE_DATA_URI.exec(url);
  if (inline) {
    const mediaType = inline[1] as 'image/png' | 'image/jpeg' | 'image/gif' | 'image/webp';
    return { type: 'image', source: { type: 'base64', media_type: mediaType, data: inline[2]! } };
  }
  return { type: 'image', source: { type: 'url', url } };
}

/**
 * The texts of a message that Maritaca reads as tokens: its text content or text blocks, and
 * the names and arguments of the calls an assistant message carries. Images are counted apart.
 */
export function textsOf(message: ChatMessage): string[] {
  const texts: string[] = [];
  if (typeof message.content === 'string') texts.push(message.content);
  else if (message.content)
    for (const block of message.content) if (block.type === 'text') texts.push(block.text);
  for (const call of message.tool_calls ?? []) texts.push(call.function.name, call.function.arguments);
  return texts;
}

/** Images a message carries. */
export function imagesIn(message: ChatMessage): number {
  if (!Array.isArray(message.content)) return 0;
  return message.content.filter((b) => b.type !== 'text').length;
}

/** The `response_format` sent to Maritaca: a `json_object` format's local `schema` stays here. */
export function sentResponseFormat(format: ResponseFormat): Record<string, unknown> {
  if (format.type === 'json_object') return { type: 'json_object' };
  return format;
}

/**
 * The request's parts other than messages that Maritaca reads as prompt tokens: the tool
 * definitions and the response format, as JSON text (how they travel in the request body).
 */
export function requestExtrasText(call: Pick<CallMaritacaInput, 'tools' | 'responseFormat'>): {
  tools: string;
  responseFormat: string;
} {
  return {
    tools: call.tools ? JSON.stringify(call.tools) : '',
    responseFormat:
      call.responseFormat && call.responseFormat.type !== 'text'
        ? JSON.stringify(sentResponseFormat(call.responseFormat))
        : '',
  };
}

/**
 * The JSON schema an answer must match, if the request asks for structured output: a
 * `json_schema` format's schema, a `json_object` format's local schema, or the parameters of the
 * function `toolChoice` forces. `kind` says where the structured answer will be.
 */
export function structuredTarget(
  call: Pick<CallMaritacaInput, 'tools' | 'toolChoice' | 'responseFormat'>,
): { kind: 'content' | 'tool_call'; schema?: Record<string, unknown>; name?: string } | null {
  const forced = forcedFunction(call);
  if (forced) {
    const tool = call.tools?.find((t) => t.function.name === forced);
    return {
      kind: 'tool_call',
      name: forced,
      ...(tool?.function.parameters ? { schema: tool.function.parameters } : {}),
    };
  }
  const format = call.responseFormat;
  if (format?.type === 'json_schema') return { kind: 'content', schema: format.json_schema.schema };
  if (format?.type === 'json_object')
    return { kind: 'content', ...(format.schema ? { schema: format.schema } : {}) };
  return null;
}

/** The function `toolChoice` forces: the one it names, or the only tool under `required`. */
export function forcedFunction(call: Pick<CallMaritacaInput, 'tools' | 'toolChoice'>): string | null {
  const choice = call.toolChoice;
  if (choice && typeof choice === 'object') return choice.function.name;
  if (choice === 'required' && call.tools?.length === 1) return call.tools[0]!.function.name;
  return null;
}
