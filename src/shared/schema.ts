import { z } from 'zod';
import { parseDurationMs } from './duration';
import type { CarriedState } from './batch-state';

/** Roles a chat message may have. */
export const MESSAGE_ROLES = ['system', 'user', 'assistant'] as const;

/** One chat message, as Maritaca's chat completions endpoint takes it. */
export const messageSchema = z.object({
  role: z.enum(MESSAGE_ROLES, { error: `must be one of ${MESSAGE_ROLES.join(', ')}` }),
  content: z.string({ error: 'must be a string' }),
});

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
  retry: retryOptionsSchema.optional(),
  rateLimit: rateLimitSchema.optional(),
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
    issues: parsed.error.issues.map((issue) => ({
      path: formatPath([...prefix, ...issue.path]),
      message: issue.message,
    })),
  };
}

/** Joins issues into one readable line per field. */
export function describeIssues(issues: readonly InputIssue[]): string {
  return issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ');
}
