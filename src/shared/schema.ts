import { z } from 'zod';
import { parseDurationMs } from './duration';
import { MAX_CALLS_PER_ACTIVITY } from './constants';
import type { CarriedState } from './batch-state';

/** Roles a chat message may have. */
export const MESSAGE_ROLES = ['system', 'user', 'assistant', 'tool'] as const;

/** Image types Maritaca takes in an image block. */
export const IMAGE_MEDIA_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'] as const;

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
/** `data:image/png;base64,...`: the OpenAI form of an inline image. */
export const IMAGE_DATA_URI = /^data:(image\/(?:png|jpeg|gif|webp));base64,([A-Za-z0-9+/]+={0,2})$/;
const HTTP_URL = /^https?:\/\/[^\s]+$/;

/** Names of functions: what OpenAI-compatible APIs accept. */
const toolNameSchema = z
  .string({ error: 'must be a string' })
  .regex(/^[a-zA-Z0-9_-]{1,64}$/, { error: 'must be 1 to 64 letters, digits, _ or -' });

/** A JSON object (a JSON schema, or a tool's parameters): checked as a schema by the client. */
const jsonObjectSchema = z.record(z.string(), z.unknown(), { error: 'must be a JSON object' });

const textBlockSchema = z.object({ type: z.literal('text'), text: z.string({ error: 'must be a string' }) });

/** An image in Maritaca's form (Anthropic-style): inline base64 data or a URL. */
const imageBlockSchema = z.object({
  type: z.literal('image'),
  source: z.discriminatedUnion(
    'type',
    [
      z.object({
        type: z.literal('base64'),
        media_type: z.enum(IMAGE_MEDIA_TYPES, { error: `must be one of ${IMAGE_MEDIA_TYPES.join(', ')}` }),
        data: z.string().refine((data) => BASE64.test(data) && data.length % 4 === 0, {
          error: 'must be non-empty, padded base64 data',
        }),
      }),
      z.object({
        type: z.literal('url'),
        url: z.string().regex(HTTP_URL, { error: 'must be an http(s) URL' }),
      }),
    ],
    { error: 'must be {"type": "base64", "media_type", "data"} or {"type": "url", "url"}' },
  ),
});

/** An image in OpenAI's form: converted to Maritaca's before it is sent. */
const imageUrlBlockSchema = z.object({
  type: z.literal('image_url'),
  image_url: z.object({
    url: z
      .string()
      .refine((url) => (IMAGE_DATA_URI.exec(url)?.[2]?.length ?? 1) % 4 === 0 || HTTP_URL.test(url), {
        error: 'must be an http(s) URL or a data:image/(png|jpeg|gif|webp);base64,... URI',
      }),
    detail: z.enum(['auto', 'low', 'high']).optional(),
  }),
});

const contentBlockSchema = z.discriminatedUnion(
  'type',
  [textBlockSchema, imageBlockSchema, imageUrlBlockSchema],
  {
    error: 'must be a {"type": "text"}, {"type": "image"} or {"type": "image_url"} block',
  },
);

/** A call the model asked for, as an assistant message carries it. */
const toolCallSchema = z.object({
  id: z.string().min(1, { error: 'must be a non-empty string' }),
  type: z.literal('function'),
  function: z.object({
    name: toolNameSchema,
    arguments: z.string().refine(isJsonText, { error: 'must be a JSON string' }),
  }),
});

function isJsonText(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * One chat message, as Maritaca's chat completions endpoint takes it: text, or content blocks
 * of text and images (user messages); an assistant message may carry `tool_calls`, and a `tool`
 * message answers one by its `tool_call_id`.
 */
export const messageSchema = z
  .object({
    role: z.enum(MESSAGE_ROLES, { error: `must be one of ${MESSAGE_ROLES.join(', ')}` }),
    content: z
      // No message of its own: the option that got furthest into the value names the fault.
      .union([z.string(), z.array(contentBlockSchema).min(1, { error: 'must hold at least one block' })])
      .nullable(),
    tool_calls: z.array(toolCallSchema).min(1, { error: 'must hold at least one call' }).optional(),
    tool_call_id: z.string().min(1, { error: 'must be a non-empty string' }).optional(),
  })
  .superRefine((message, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (message.role === 'tool' && message.tool_call_id === undefined)
      issue('tool_call_id', 'a tool message must name the call it answers');
    if (message.role !== 'tool' && message.tool_call_id !== undefined)
      issue('tool_call_id', 'only a tool message answers a call');
    if (message.role !== 'assistant' && message.tool_calls !== undefined)
      issue('tool_calls', 'only an assistant message carries tool calls');
    if (message.content === null && !(message.role === 'assistant' && message.tool_calls))
      issue('content', 'must be a string (null only for an assistant message with tool_calls)');
    if (Array.isArray(message.content) && message.role !== 'user') {
      message.content.forEach((block, i) => {
        if (block.type !== 'text')
          ctx.addIssue({ code: 'custom', path: ['content', i], message: 'images go in user messages only' });
      });
    }
  });

/** A function the model may call, in the OpenAI format Maritaca takes. */
export const toolSchema = z.object({
  type: z.literal('function', { error: 'must be "function"' }),
  function: z.object({
    name: toolNameSchema,
    description: z.string().optional(),
    parameters: jsonObjectSchema.optional(),
    strict: z.boolean().optional(),
  }),
});

/** Whether and which tool the model must call. */
export const toolChoiceSchema = z.union(
  [
    z.enum(['auto', 'none', 'required']),
    z.object({ type: z.literal('function'), function: z.object({ name: toolNameSchema }) }),
  ],
  { error: 'must be "auto", "none", "required" or {"type": "function", "function": {"name"}}' },
);

/**
 * The form of the answer: text, any JSON object, or JSON matching a schema. A `json_object`
 * format may carry a `schema` the answers are checked against here; it is not sent to Maritaca.
 */
export const responseFormatSchema = z.discriminatedUnion(
  'type',
  [
    z.object({ type: z.literal('text') }),
    z.object({ type: z.literal('json_object'), schema: jsonObjectSchema.optional() }),
    z.object({
      type: z.literal('json_schema'),
      json_schema: z.object({
        name: toolNameSchema,
        description: z.string().optional(),
        schema: jsonObjectSchema,
        strict: z.boolean().optional(),
      }),
    }),
  ],
  { error: 'must be {"type": "text"}, {"type": "json_object"} or {"type": "json_schema", "json_schema"}' },
);

/** Chat features a request may set, and the batch options may set as defaults. */
const chatFeatureFields = {
  tools: z.array(toolSchema, { error: 'must be an array of tools' }).min(1).max(128).optional(),
  toolChoice: toolChoiceSchema.optional(),
  responseFormat: responseFormatSchema.optional(),
  seed: z.number().int({ error: 'must be a whole number' }).optional(),
  frequencyPenalty: z.number().min(-2).max(2).optional(),
  presencePenalty: z.number().min(-2).max(2).optional(),
};

// Which models exist is the price table's business, and a prices file may add one the workflow
// code has never heard of: the client refuses unknown names against its table before starting.
const modelSchema = z.string({ error: 'must be a string' }).min(1, { error: 'must be a non-empty string' });

const stopSchema = z.union([z.string(), z.array(z.string()).max(4)], {
  error: 'must be a string or an array of at most 4 strings',
});

const durationSchema = z.union([z.string(), z.number()]).refine((v) => parseDurationMs(v) !== undefined, {
  error: 'must be a positive duration in milliseconds or a string such as "90s", "15m", "2h"',
});

/** One request of a batch. */
export const batchRequestSchema = z.object({
  id: z.string().min(1, { error: 'must be a non-empty string' }).optional(),
  messages: z
    .array(messageSchema, { error: 'must be an array of messages' })
    .min(1, { error: 'must contain at least one message' }),
  model: modelSchema.optional(),
  maxTokens: z.number().int().positive().optional(),
  temperature: z.number().min(0).max(2).optional(),
  topP: z.number().gt(0).max(1).optional(),
  stop: stopSchema.optional(),
  ...chatFeatureFields,
});

/** Retry policy applied to each Maritaca call; every field is optional. */
export const retryOptionsSchema = z.object({
  maximumAttempts: z.number().int().positive().optional(),
  initialInterval: durationSchema.optional(),
  maximumInterval: durationSchema.optional(),
  backoffCoefficient: z.number().min(1).optional(),
});

/** Per-minute limits of the Maritaca key, enforced by the workflow before each call starts. */
export const rateLimitSchema = z.object({
  rpm: z.number().int().positive().optional(),
  inputTpm: z.number().int().positive().optional(),
  outputTpm: z.number().int().positive().optional(),
});

/** Options for the whole batch. */
export const batchOptionsSchema = z.object({
  model: modelSchema.optional(),
  maxConcurrency: z.number().int().min(1, { error: 'must be at least 1' }).max(1000).optional(),
  maxOutputTokens: z.number().int().positive().optional(),
  temperature: z.number().min(0).max(2).optional(),
  stop: stopSchema.optional(),
  returnExceptions: z.boolean().optional(),
  autoApproveBelow: z.number().nonnegative().optional(),
  approvalTimeout: durationSchema.optional(),
  requestTimeout: durationSchema.optional(),
  // The trade-off between Temporal actions and how fast a cancel or a lost worker is noticed.
  heartbeatInterval: durationSchema
    .refine((v) => (parseDurationMs(v) ?? 0) >= 1000, { error: 'must be at least 1 second' })
    .optional(),
  // Requests one activity calls one after another: 'auto' (the default) sizes runs from the
  // answers' latency; 1 schedules one activity per request.
  callsPerActivity: z
    .union([z.literal('auto'), z.number().int().min(1).max(MAX_CALLS_PER_ACTIVITY)])
    .optional(),
  retry: retryOptionsSchema.optional(),
  // An outage (Maritaca unreachable or failing for every request) holds the batch: it probes with
  // one call, first after apiProbeInterval (default 5 s), doubling up to apiProbeMaxInterval
  // (default 2 min), for at most apiOutageTimeout (default 24 h) before requests fail again.
  apiProbeInterval: durationSchema.optional(),
  apiProbeMaxInterval: durationSchema.optional(),
  apiOutageTimeout: durationSchema.optional(),
  // This batch's weight in the share of a key's declared limits (MARITACA_RATE_LIMIT on workers).
  priority: z.number().int().min(1).max(100).optional(),
  rateLimit: rateLimitSchema.optional(),
  ...chatFeatureFields,
  // Answers that do not match the requested JSON are asked again this many times (default 2).
  structuredOutputRetries: z.number().int().min(0).max(10).optional(),
  // US$ per million Temporal actions, for the orchestration's cost in the estimate (default 50).
  temporalActionPrice: z.number().nonnegative().optional(),
  // Tokens counted for each image in the estimate and the reservations (default 2000).
  imageTokenBound: z.number().int().positive().max(1_000_000).optional(),
  // The chat template's tokens to count before the batch has learned them from its own answers.
  templateOverhead: z
    .object({
      perRequest: z.number().min(0).max(100_000),
      perMessage: z.number().min(0).max(100_000),
    })
    .optional(),
  historyEventLimit: z.number().int().min(2000, { error: 'must be at least 2000' }).max(50_000).optional(),
  onProgress: z
    .object({
      url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
      everySeconds: z.number().positive().optional(),
    })
    .optional(),
});

/** The workflow's input: the requests and the batch options. */
export const batchInputSchema = z
  .object({
    requests: z
      .array(batchRequestSchema, { error: 'must be an array of requests' })
      .min(1, { error: 'must contain at least one request' })
      .optional(),
    source: z
      .object({
        type: z.literal('jsonl'),
        url: z
          .string()
          .regex(/^(s3|file):\/\/./, { error: 'must be an s3:// or file:// URL' })
          .optional(),
        path: z.string().min(1).optional(),
        count: z.number().int().positive({ error: 'must count at least one request' }),
      })
      .refine((source) => (source.url === undefined) !== (source.path === undefined), {
        error: 'give the source url (or, from earlier versions, a path), not both',
      })
      .optional(),
    options: batchOptionsSchema.optional(),
    /** Set by the workflow itself when it continues as new; never by callers. */
    resume: z.custom<CarriedState>((v) => typeof v === 'object' && v !== null).optional(),
  })
  .superRefine((input, ctx) => {
    if ((input.requests === undefined) === (input.source === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: input.requests === undefined ? ['requests'] : ['source'],
        message: 'give either requests (inline) or source (a JSONL file), not both and not neither',
      });
    }
    const seen = new Map<string, number>();
    (input.requests ?? []).forEach((request, index) => {
      const id = request.id ?? String(index);
      const first = seen.get(id);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['requests', index, 'id'],
          message: `duplicate id "${id}" (already used by requests[${first}])`,
        });
      } else {
        seen.set(id, index);
      }
    });
  });

/** Signal payload of `approve`. */
export const approveSchema = z.object({
  budget: z.number({ error: 'must be a number' }).positive({ error: 'must be a positive number' }).optional(),
  approvedBy: z.string().optional(),
});

/** Argument of the `approveBudget` update: unlike the signal, the budget is required. */
export const approveBudgetSchema = z.object({
  budget: z.number({ error: 'must be a number' }).positive({ error: 'must be a positive number' }),
  approvedBy: z.string().optional(),
});

/** Argument of the `setConcurrency` update. */
export const concurrencySchema = z
  .number({ error: 'must be a number' })
  .int({ error: 'must be a whole number' })
  .min(1, { error: 'must be at least 1' })
  .max(1000, { error: 'must be at most 1000' });

/** Signal payload of `reject`. */
export const rejectSchema = z.object({ reason: z.string().optional() });

/** One field-level problem found while validating input. */
export interface InputIssue {
  /** Where the problem is, e.g. `requests[3].messages[0].role`. */
  readonly path: string;
  /** What is wrong with it. */
  readonly message: string;
}

/** Formats a zod path such as `['requests', 3, 'messages', 0, 'role']` as `requests[3].messages[0].role`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out || '(input)';
}

/** Result of {@link validateInput}: the parsed value or every issue found. */
export type ValidationResult<T> = { ok: true; value: T } | { ok: false; issues: InputIssue[] };

/** Validates `value` against `schema`, naming each bad field by its path under `prefix`. */
export function validateWith<T>(
  schema: z.ZodType<T>,
  value: unknown,
  prefix: readonly PropertyKey[] = [],
): ValidationResult<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return { ok: true, value: parsed.data };
  return {
    ok: false,
    issues: parsed.error.issues.flatMap(specific).map((issue) => ({
      path: formatPath([...prefix, ...issue.path]),
      message: issue.message,
    })),
  };
}

interface SchemaIssue {
  path: PropertyKey[];
  message: string;
  code?: string;
  errors?: SchemaIssue[][];
}

/**
 * A union without a message of its own whose every option failed reports the option that got
 * furthest into the value (say, the content-block array rather than "expected string"), so the
 * message names the field at fault.
 */
function specific(issue: SchemaIssue): SchemaIssue[] {
  // A union with a message of its own says what it means already.
  if (issue.code !== 'invalid_union' || issue.message !== 'Invalid input' || !issue.errors?.length)
    return [issue];
  const depth = (issues: SchemaIssue[]) => Math.max(0, ...issues.map((i) => i.path.length));
  const deepest = issue.errors.reduce((best, option) => (depth(option) > depth(best) ? option : best));
  if (depth(deepest) === 0) return [issue];
  return deepest.flatMap(specific).map((inner) => ({ ...inner, path: [...issue.path, ...inner.path] }));
}

/** Joins issues into one readable line per field. */
export function describeIssues(issues: readonly InputIssue[]): string {
  return issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ');
}
