import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
// Imported from the files, not the shared index, so the fake never loads the workflow SDK.
import { addCosts, KNOWN_MODELS, priceOf } from '../shared/prices';
import { hasExactTokenizer } from '../tokenizer/families';
import { countTokens } from '../tokenizer/maritaca-tokenizer';
import {
  parseFakeChatRequest,
  type FakeChatMessage,
  type FakeChatRequest,
  type FakeChatTool,
  type FastApiIssue,
} from './fake-chat-request';
import { exampleOfJsonSchema, invalidJsonAnswer } from './json-schema-values';

export {
  exampleOfJsonSchema,
  invalidJsonAnswer,
  type InvalidJsonAnswer,
  type InvalidJsonAnswerKind,
} from './json-schema-values';
import { mulberry32 } from './seeded-random';

/**
 * Behaviour of the fake server that may change while it runs, through
 * {@link FakeMaritacaServer.configure} or `POST /_config`.
 */
export interface FakeMaritacaBehaviour {
  /** Every answer (200 or injected 500) waits exactly this long. Excludes the log-normal settings. */
  latencyMs?: number;
  /** Median of a log-normal latency; needs {@link latencyP99Ms}. */
  latencyMedianMs?: number;
  /** 99th percentile of the log-normal latency; at least {@link latencyMedianMs}. */
  latencyP99Ms?: number;
  /** Fraction (0..1) of admitted chat requests answered 500. */
  errorRate500?: number;
  /** Fraction (0..1) of admitted chat requests answered 429 with `Retry-After`. */
  errorRate429?: number;
  /** `Retry-After` of injected 429s, in whole seconds. Default 1. */
  retryAfterSeconds?: number;
  /** Fraction (0..1) of admitted chat requests never answered, until the client gives up. */
  hangRate?: number;
  /** Chat requests admitted per sliding 60-second window; beyond it the answer is 429. */
  rpm?: number;
  /**
   * Length of each reply: `'max'` answers exactly `max_tokens` tokens with finish reason
   * `length`; a number N answers min(N, `max_tokens`) tokens. Unset: a short natural reply.
   * Structured answers (JSON formats, forced tool calls) keep the length of their value.
   */
  replyTokens?: 'max' | number;
  /** Seed of the PRNG behind every random decision; setting it at runtime restarts the sequence. */
  seed?: number;
  /** Fraction (0..1) of prompt tokens reported as `cached_tokens`. Default 0. */
  cachedTokensRate?: number;
  /**
   * Chat-template tokens added to `prompt_tokens` on top of the messages' own tokens: one
   * overhead for every model, or one per model (models left out keep
   * {@link DEFAULT_FAKE_TEMPLATE_OVERHEAD}). Default {@link DEFAULT_FAKE_TEMPLATE_OVERHEAD}.
   */
  templateOverhead?: FakeTemplateOverhead | Readonly<Record<string, FakeTemplateOverhead>>;
  /**
   * Fraction (0..1) of structured answers (a `json_schema` or `json_object` format, a forced
   * tool call) made wrong on purpose, so a client's check and re-ask are exercised: a required
   * property left out, a value of a type (or outside the enum) the schema refuses, or prose
   * around the JSON, which is then not JSON at all. Drawn from a stream of its own, seeded from
   * {@link seed}, once per structured answer: the same seed and the same requests in the same
   * order break the same answers, and the other decisions are the ones they were without it.
   * Default 0.
   */
  invalidStructuredRate?: number;
  /**
   * Break only first answers: a request the server has already answered with structured output
   * (the same body: a client asking again) is answered validly. Models a model that gets it right
   * when asked again, so "20% of first answers invalid" has an exact meaning. Default false.
   */
  invalidStructuredFirstOnly?: boolean;
  /**
   * Prompt tokens each image block counts, whatever its size (Maritaca publishes no formula).
   * Default {@link DEFAULT_FAKE_IMAGE_TOKENS}.
   */
  imageTokens?: number;
  /**
   * The service is down: `'refused'` closes the listening port, so connections are refused
   * (`ECONNREFUSED`) as when the server process is not running, and drops every open connection
   * with whatever it was serving (not billed, as a crash bills nothing); the port reopens, same
   * host and port, when the outage ends. `/_config` and `/_stats` are unreachable meanwhile: end
   * it with {@link outageForMs} or in process with `configure({ outage: null })`.
   * `'unavailable'` keeps the port open and answers every chat call (and `GET /models`)
   * `503 {"detail": ...}` at once, before the key check, unbilled, counted in
   * {@link FakeMaritacaStats.outageCalls}. Unset: no outage.
   */
  outage?: 'refused' | 'unavailable';
  /**
   * Ends the {@link outage} by itself this long after the update (or start) that set `outage` or
   * `outageForMs`: a new value restarts the clock. Needs `outage`; ending the outage clears both.
   */
  outageForMs?: number;
  /**
   * The key stops working after this many chat calls carrying it (whatever they were answered)
   * since it was set or since {@link FakeMaritacaServer.reset}: every later call is refused with
   * {@link revokedStatus}, unbilled. 0 revokes it at once; `null` restores it. Calls answered 503 by
   * an outage or 401 for a wrong key do not count.
   */
  revokeKeyAfterCalls?: number;
  /**
   * Status of calls refused by {@link revokeKeyAfterCalls}: 401 (the key is invalid or revoked),
   * 402 (the account's credits ran out, "Saldo insuficiente") or 403 (the key may no longer use the
   * API). Default 401.
   */
  revokedStatus?: 401 | 402 | 403;
  /**
   * Every error answer of the API (status 400 and above, from chat completions, `/models` or an
   * unknown path) repeats the credential the client sent, as careless servers do: the token in the
   * message (`... (key: sk-...)`) and the whole `Authorization` header in `request_headers`.
   * Proves a client redacts keys wherever error bodies end up. The control endpoints never echo.
   * Default false.
   */
  echoKeyInErrors?: boolean;
}

/** Prompt tokens the fake counts for each image unless `imageTokens` says otherwise. */
export const DEFAULT_FAKE_IMAGE_TOKENS = 1000;

/**
 * Tokens a chat template adds around the messages: `perRequest` once (the assistant turn's
 * opening), `perMessage` for each message (role markers and delimiters).
 */
export interface FakeTemplateOverhead {
  readonly perRequest: number;
  readonly perMessage: number;
}

/**
 * The fake's chat-template overhead unless configured otherwise: a Qwen-style (ChatML) template,
 * `<|im_start|>role\n ... <|im_end|>\n` per message (5 tokens) and `<|im_start|>assistant\n`
 * once (3 tokens). Maritaca does not publish its template (the real overhead shows only as
 * `usage.prompt_tokens` minus the content's count), so this is a plausible stand-in; configure
 * `templateOverhead` to model another one.
 */
export const DEFAULT_FAKE_TEMPLATE_OVERHEAD: FakeTemplateOverhead = Object.freeze({
  perRequest: 3,
  perMessage: 5,
});

/**
 * A change to the fake's behaviour: an absent or `undefined` field stays as it is, `null`
 * turns the setting off (back to its default).
 */
export type FakeMaritacaBehaviourUpdate = {
  [K in keyof FakeMaritacaBehaviour]?: FakeMaritacaBehaviour[K] | null;
};

/** Options of {@link startFakeMaritaca}. */
export interface FakeMaritacaOptions extends FakeMaritacaBehaviour {
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number;
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Key clients must send as `Authorization: Bearer <key>`. Default `test-key`. */
  apiKey?: string;
}

/** What the fake would have billed, summed like a provider's invoice. */
export interface FakeMaritacaBilling {
  /** Calls billed: answered 200s, calls whose client left while they were generated, abandoned hangs. */
  calls: number;
  /** Prompt tokens billed, cached ones included. */
  promptTokens: number;
  /** Completion tokens billed. */
  completionTokens: number;
  /** What those calls cost at list price, cached prompt tokens at the cached price. */
  costBRL: number;
}

/** Counters of chat completion requests, as `GET /_stats` reports them. */
export interface FakeMaritacaStats {
  /** Chat completion requests received, whatever they were answered. */
  totalRequests: number;
  /** Chat completion requests per `X-Request-Id` header; `(none)` counts those without one. */
  byRequestId: Record<string, number>;
  /** Chat completion requests being served right now, hanging ones included. */
  currentConcurrency: number;
  /** Highest {@link currentConcurrency} since start or the last reset. */
  peakConcurrency: number;
  /** Chat completion answers sent, per HTTP status. */
  byStatus: Record<string, number>;
  /**
   * What a provider would bill. Like a real server, the fake bills work it did, not answers
   * delivered: a call whose client disconnects keeps generating (and counting in
   * {@link currentConcurrency}) until its latency elapses, then is billed as if answered; a hung
   * call is billed its prompt plus `max_tokens` when the client gives up. Injected 429s and
   * 500s, forced statuses, refused requests (a wrong or revoked key, an outage's 503s) and calls
   * dropped when a `'refused'` outage shuts the port cost nothing.
   */
  billed: FakeMaritacaBilling;
  /** {@link FakeMaritacaBilling.costBRL} per `X-Request-Id`; `(none)` for calls without one. */
  billedByRequestId: Record<string, number>;
  /**
   * The outage clients meet right now: `'refused'` from the moment the port closes until it
   * accepts connections again (which may lag the `configure` that ended it by a moment), the
   * configured `'unavailable'`, or `null`.
   */
  outage: 'refused' | 'unavailable' | null;
  /**
   * Chat calls received during an `'unavailable'` outage, each answered 503: exact, so a test
   * can bound what a client sent during one. Calls during a `'refused'` outage never reach the
   * server and cannot be counted: compare {@link totalRequests} before and after instead.
   */
  outageCalls: number;
  /** When the latest outage began (`Date.now()`), or `null` if none began since start. */
  outageStartedAt: number | null;
  /**
   * When the latest outage ended (`Date.now()`): for `'refused'`, once the port accepts
   * connections again. `null` while it lasts (starting an outage clears it) or if none ended.
   */
  outageEndedAt: number | null;
  /** Chat calls refused because {@link FakeMaritacaBehaviour.revokeKeyAfterCalls} was reached. */
  revokedCalls: number;
}

/** A running fake Maritaca server. */
export interface FakeMaritacaServer {
  /** Base URL to give clients, e.g. `http://127.0.0.1:8090`; `/api` and `/v1` under it work too. */
  readonly url: string;
  /** Port the server listens on. */
  readonly port: number;
  /** A snapshot of the counters. */
  stats(): FakeMaritacaStats;
  /**
   * Clears the counters, the billing, the peak concurrency and the RPM window. Calls still
   * generating for a client that is still waiting are billed when they finish, after the reset,
   * as the load they are; calls whose client already left are forgotten.
   *
   * Also ends any outage (clearing `outage` and `outageForMs`; a closed port reopens, see
   * {@link outageEnded}) and restarts the count toward `revokeKeyAfterCalls`, so a revoked key
   * works again for that many calls; the setting itself stays. The outage timestamps are history,
   * not counters: they stay, except that ending an outage stamps `outageEndedAt`.
   */
  reset(): void;
  /**
   * Changes behaviour at runtime.
   *
   * @throws RangeError naming the offending field; nothing changes then.
   */
  configure(update: FakeMaritacaBehaviourUpdate): void;
  /** The behaviour in force. */
  behaviour(): FakeMaritacaBehaviour;
  /**
   * Resolves once no outage is in force: at once when there is none, otherwise when it ends (by
   * `outageForMs`, `configure`, `reset`), for `'refused'` only once the port accepts connections
   * again. Never resolves for an outage nothing ends; rejects if the server is closed first.
   */
  outageEnded(): Promise<void>;
  /** Stops listening and drops every connection, hanging requests included. Idempotent. */
  close(): Promise<void>;
}

/**
 * A last user message containing `[[fake-status:NNN]]` is answered with HTTP NNN, so a test can
 * make one particular request fail whatever the configured rates.
 */
export const FORCED_STATUS = /\[\[fake-status:([1-5]\d\d)\]\]/;

/** API key the fake expects unless told otherwise. */
export const FAKE_MARITACA_DEFAULT_API_KEY = 'test-key';

/** `max_tokens` the fake assumes when a request sends none. */
export const FAKE_DEFAULT_MAX_TOKENS = 256;

/**
 * Tokens of `text` under `model`'s Maritaca tokenizer, exactly what the fake reports as
 * `completion_tokens` for a reply with this text.
 *
 * @throws RangeError when no Maritaca tokenizer ships for the model.
 * @example
 * fakeCompletionTokens('Resposta para: oi', 'sabia-4'); // 5
 */
export function fakeCompletionTokens(text: string, model: string): number {
  const tokens = countTokens(text, model);
  if (tokens === undefined) throw new RangeError(`no Maritaca tokenizer for model "${model}"`);
  return tokens;
}

/**
 * `prompt_tokens` the fake reports for these plain text messages (see {@link fakePromptTokensOf}
 * for content blocks, images, tools and response formats): each message's content counted exactly
 * with Maritaca's tokenizer, plus the chat template's `perRequest + perMessage × messages`.
 *
 * @param overhead the template overhead in force (as configured on the server: one for every
 *   model, or one per model); default {@link DEFAULT_FAKE_TEMPLATE_OVERHEAD}.
 * @throws RangeError when no Maritaca tokenizer ships for the model.
 * @example
 * fakePromptTokens([{ content: 'Olá, mundo!' }], 'sabia-4'); // 5 + 3 + 5 = 13
 */
export function fakePromptTokens(
  messages: readonly { content: string }[],
  model: string,
  overhead?: FakeMaritacaBehaviour['templateOverhead'],
): number {
  const template = templateOverheadFor(overhead, model);
  let total = template.perRequest + template.perMessage * messages.length;
  for (const message of messages) total += fakeCompletionTokens(message.content, model);
  return total;
}

/**
 * `prompt_tokens` the fake reports for a chat completions body, chat features included:
 *
 * `perRequest + perMessage × messages`
 * `+ Σ messages: tokens(content) for a string content, tokens(text) of each text block,`
 * `imageTokens × image blocks, tokens(name) + tokens(arguments) of each tool call an assistant`
 * `message carries`
 * `+ tokens(JSON.stringify(tools))` when `tools` is sent
 * `+ tokens(JSON.stringify(response_format))` when it is sent with a type other than `text`,
 *
 * every count exact with Maritaca's tokenizer for the body's model. `JSON.stringify` keeps the
 * keys in the order they were sent, as the server sees them. Plain string messages give what
 * {@link fakePromptTokens} gives.
 *
 * @param body a chat completions body the fake would accept (an OpenAI SDK params object will do).
 * @param settings the server's `templateOverhead` and `imageTokens`; pass `server.behaviour()`.
 *   Defaults {@link DEFAULT_FAKE_TEMPLATE_OVERHEAD} and {@link DEFAULT_FAKE_IMAGE_TOKENS}.
 * @throws RangeError when the fake would refuse the body (naming the first issue's location),
 *   or no Maritaca tokenizer ships for its model.
 * @example
 * const image = { type: 'image', source: { type: 'url', url: 'https://example.com/gato.jpg' } };
 * fakePromptTokensOf(
 *   { model: 'sabia-4', messages: [{ role: 'user', content: [{ type: 'text', text: 'Olá' }, image] }] },
 *   { imageTokens: 500 },
 * ); // tokens('Olá') + 500 + 3 + 5
 */
export function fakePromptTokensOf(
  body: object,
  settings: Pick<FakeMaritacaBehaviour, 'templateOverhead' | 'imageTokens'> = {},
): number {
  const parsed = parseFakeChatRequest(body);
  if (Array.isArray(parsed)) {
    const [first] = parsed as [FastApiIssue];
    throw new RangeError(`the fake refuses this body: ${first.loc.join('.')}: ${first.msg}`);
  }
  return promptTokensOf(parsed, settings);
}

function promptTokensOf(
  request: FakeChatRequest,
  settings: Pick<FakeMaritacaBehaviour, 'templateOverhead' | 'imageTokens'>,
): number {
  const { model } = request;
  const template = templateOverheadFor(settings.templateOverhead, model);
  const imageTokens = settings.imageTokens ?? DEFAULT_FAKE_IMAGE_TOKENS;
  let total = template.perRequest + template.perMessage * request.messages.length;
  for (const message of request.messages) {
    for (const text of message.texts) total += fakeCompletionTokens(text, model);
    for (const call of message.toolCalls) {
      total += fakeCompletionTokens(call.name, model) + fakeCompletionTokens(call.arguments, model);
    }
    total += imageTokens * message.images;
  }
  if (request.toolsJson !== undefined) total += fakeCompletionTokens(request.toolsJson, model);
  if (request.responseFormatJson !== undefined) {
    total += fakeCompletionTokens(request.responseFormatJson, model);
  }
  return total;
}

/**
 * The longest prefix of `text` (never splitting a surrogate pair) of at most `tokens` tokens:
 * how the fake cuts an answer at `max_tokens`.
 */
function longestPrefixWithin(text: string, tokens: number, model: string): string {
  const count = (part: string): number => fakeCompletionTokens(part, model);
  if (count(text) <= tokens) return text;
  // Prefix counts grow almost monotonically with length, so a binary search over code points
  // finds a long prefix within the budget.
  const points = Array.from(text);
  let fits = 0;
  let tooLong = points.length;
  while (tooLong - fits > 1) {
    const middle = (fits + tooLong) >>> 1;
    if (count(points.slice(0, middle).join('')) <= tokens) fits = middle;
    else tooLong = middle;
  }
  return points.slice(0, fits).join('');
}

/**
 * Text of exactly `tokens` tokens under `model`'s tokenizer that starts like `base`: `base`
 * itself padded with one-token filler words, or the longest prefix of `base` that fits, padded
 * the same way. The fake answers with it, so `completion_tokens` is the reply's true count.
 *
 * @throws RangeError when `tokens` is not a positive integer or no tokenizer ships for the model.
 * @example
 * fakeTextOfTokens('Resposta para: oi', 8, 'sabia-4'); // 'Resposta para: oi palavra palavra palavra'
 */
export function fakeTextOfTokens(base: string, tokens: number, model: string): string {
  if (!isPositiveInteger(tokens)) throw new RangeError('tokens must be a positive integer');
  const count = (text: string): number => fakeCompletionTokens(text, model);
  const head = longestPrefixWithin(base, tokens, model);
  // Each filler word is a piece of its own, so it adds exactly one token; only the seam with the
  // head may merge differently, and that is a constant the second round corrects.
  let fillers = tokens - count(head);
  for (let round = 0; round < 3 && fillers >= 0; round++) {
    const text = head + FILLER_WORD.repeat(fillers);
    const counted = count(text);
    if (counted === tokens) return text;
    fillers += tokens - counted;
  }
  const fallback = FILLER_WORD.repeat(tokens);
  if (count(fallback) !== tokens) {
    throw new RangeError(`cannot build a text of exactly ${tokens} tokens for model "${model}"`);
  }
  return fallback;
}

/** The overhead that applies to `model` under a `templateOverhead` setting. */
function templateOverheadFor(
  setting: FakeMaritacaBehaviour['templateOverhead'],
  model: string,
): FakeTemplateOverhead {
  if (setting === undefined) return DEFAULT_FAKE_TEMPLATE_OVERHEAD;
  if (isTemplateOverhead(setting)) return setting;
  return (setting as Record<string, FakeTemplateOverhead>)[model] ?? DEFAULT_FAKE_TEMPLATE_OVERHEAD;
}

/**
 * Starts a fake Maritaca AI server speaking the OpenAI-compatible chat completions API, with
 * injectable latency, errors, hangs, rate limits, outages and a key that stops working. It counts
 * tokens with Maritaca's own tokenizer, whose vocabulary the first server of a process loads
 * (about half a second).
 *
 * It speaks Maritaca's chat features, as `langchain-maritaca` 0.4.1 uses them:
 * - Content is a string or an array of `{"type": "text"}` and Anthropic-style `{"type": "image"}`
 *   blocks (base64 PNG/JPEG/GIF/WebP, or an http(s) URL). An OpenAI `image_url` block, which
 *   Maritaca does not take, is refused 422 at `body.messages.N.content.M`.
 * - `tools`, `tool_choice`, assistant `tool_calls` and `tool` messages (whose `tool_call_id`
 *   must answer an earlier call of the same request), `response_format` (`text`,
 *   `json_object`, `json_schema`), `seed` and the penalties are checked; every refusal is a
 *   FastAPI 422 `{"detail": [{loc, msg, type}]}`, including the checks across fields (a
 *   `tool_choice` naming no offered tool, `"required"` without tools, an unanswered
 *   `tool_call_id`): a FastAPI front end runs those as pydantic model validators, which it
 *   answers 422 as well, not 400.
 * - A forced `tool_choice` (a named function, or `"required"`: the first tool) answers one call
 *   with arguments built by {@link exampleOfJsonSchema} from the function's `parameters`,
 *   `content: null` and `finish_reason: "tool_calls"`; `"auto"`, `"none"` or none answer text.
 *   A `json_schema` format answers JSON text of a value of its schema; `json_object` answers
 *   `{"answer": "Resposta para: ..."}`. `invalidStructuredRate` breaks a share of them.
 * - After a `tool` message the text reply quotes the tool's result.
 * - `prompt_tokens` counts tool definitions, response formats, tool calls and images as
 *   {@link fakePromptTokensOf} says.
 *
 * @example
 * const server = await startFakeMaritaca({ latencyMs: 20, errorRate429: 0.1, seed: 1 });
 * const client = new OpenAI({ apiKey: 'test-key', baseURL: server.url });
 * // ...
 * await server.close();
 */
export async function startFakeMaritaca(options: FakeMaritacaOptions = {}): Promise<FakeMaritacaServer> {
  const { port = 0, host = '127.0.0.1', apiKey = FAKE_MARITACA_DEFAULT_API_KEY, ...behaviour } = options;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError('port must be an integer between 0 and 65535');
  }
  if (apiKey.length === 0) throw new RangeError('apiKey must not be empty');
  const fake = new FakeMaritaca(apiKey, behaviour);
  // Loading a vocabulary blocks for about half a second, once per process: paid here, it cannot
  // stall the first answers (and everything else on the event loop) in the middle of a run.
  for (const model of SERVED_MODELS) fakeCompletionTokens('', model);
  await fake.listen(port, host);
  return fake;
}

const WINDOW_MS = 60_000;
/** Pause between attempts to take the port back after a `'refused'` outage. */
const REBIND_RETRY_MS = 50;
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const REPLY_PREFIX = 'Resposta para: ';
const FILLER_WORD = ' palavra';
const NO_REQUEST_ID = '(none)';
/** Inverse normal CDF at 0.99: how many sigmas the p99 sits above the median. */
const Z_99 = 2.326;

// Only models the fake can both count exactly and price; every known model qualifies today.
const SERVED_MODELS = KNOWN_MODELS.filter(hasExactTokenizer);
const MODELS = new Set(SERVED_MODELS);
const MODEL_LIST_BODY = JSON.stringify({
  object: 'list',
  data: SERVED_MODELS.map((id) => ({ id, object: 'model', created: 0, owned_by: 'maritaca' })),
});

type Latency =
  { kind: 'none' } | { kind: 'fixed'; ms: number } | { kind: 'lognormal'; mu: number; sigma: number };

type Json = Record<string, unknown>;

/** Tokens of one billed call. */
interface Usage {
  readonly model: string;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly cachedPromptTokens: number;
}

/**
 * What the server is doing for an admitted exchange, which decides what a client leaving costs:
 * nothing while the request is read or refused, the whole reply while it is generated, the
 * worst case while it hangs.
 */
type ExchangePhase =
  { kind: 'receiving' } | { kind: 'generating'; usage: Usage } | { kind: 'hanging'; worstCase: Usage };

/** One chat completion request from arrival until it is answered or its client leaves. */
interface ChatExchange {
  readonly res: http.ServerResponse;
  readonly requestId: string;
  phase: ExchangePhase;
  /** The client disconnected before an answer was written. */
  clientGone: boolean;
  done: boolean;
  timer: NodeJS.Timeout | undefined;
}

/** A request the fake accepted, with `max_tokens` defaulted. */
type ParsedChatRequest = FakeChatRequest & { readonly maxTokens: number };

/** What a structured answer carries and how it counts. */
interface AnswerParts {
  readonly message: Json;
  readonly completionTokens: number;
  readonly finishReason: string;
}

/**
 * Timestamps of admitted requests over the last minute. A head index instead of `shift()`
 * keeps pruning O(1) at benchmark rates.
 */
class SlidingWindow {
  private times: number[] = [];
  private head = 0;

  /** Records a request and returns 0, or returns how many ms until one more would fit. */
  tryAdmit(now: number, limit: number): number {
    const times = this.times;
    while (this.head < times.length && (times[this.head] as number) <= now - WINDOW_MS) this.head++;
    if (this.head > 1024 && this.head * 2 > times.length) {
      this.times = times.slice(this.head);
      this.head = 0;
    }
    const inWindow = this.times.length - this.head;
    if (inWindow >= limit) {
      // When the limit was lowered below the window's count, several must expire, not just one.
      const freeing = this.times[this.times.length - limit] as number;
      return Math.max(1, freeing + WINDOW_MS - now);
    }
    this.times.push(now);
    return 0;
  }

  clear(): void {
    this.times = [];
    this.head = 0;
  }
}

function isRate(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= 1;
}

function isNonNegative(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}

function isTemplateOverhead(value: unknown): value is FakeTemplateOverhead {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  const { perRequest, perMessage } = value as Json;
  return (
    keys.length === 2 &&
    Number.isInteger(perRequest) &&
    (perRequest as number) >= 0 &&
    Number.isInteger(perMessage) &&
    (perMessage as number) >= 0
  );
}

function checkTemplateOverhead(value: unknown): string | undefined {
  const shape = 'must be { perRequest, perMessage } (integers >= 0) or an object of them keyed by model';
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return shape;
  if (isTemplateOverhead(value)) return undefined;
  const entries = Object.entries(value);
  // A uniform overhead with a bad number is reported as such, not as a model named perRequest.
  if (entries.some(([key]) => key === 'perRequest' || key === 'perMessage')) return shape;
  for (const [model, overhead] of entries) {
    if (!MODELS.has(model)) return `names unknown model "${model}"`;
    if (!isTemplateOverhead(overhead)) {
      return `for "${model}" must be { perRequest, perMessage } with integers >= 0`;
    }
  }
  return undefined;
}

const RUNTIME_FIELDS: Readonly<Record<keyof FakeMaritacaBehaviour, (value: unknown) => string | undefined>> =
  {
    latencyMs: (v) => (isNonNegative(v) ? undefined : 'must be a number >= 0'),
    latencyMedianMs: (v) => (isNonNegative(v) && v > 0 ? undefined : 'must be a number > 0'),
    latencyP99Ms: (v) => (isNonNegative(v) && v > 0 ? undefined : 'must be a number > 0'),
    errorRate500: (v) => (isRate(v) ? undefined : 'must be a number between 0 and 1'),
    errorRate429: (v) => (isRate(v) ? undefined : 'must be a number between 0 and 1'),
    retryAfterSeconds: (v) =>
      Number.isInteger(v) && (v as number) >= 0 ? undefined : 'must be an integer >= 0',
    hangRate: (v) => (isRate(v) ? undefined : 'must be a number between 0 and 1'),
    rpm: (v) => (isPositiveInteger(v) ? undefined : 'must be a positive integer'),
    replyTokens: (v) =>
      v === 'max' || isPositiveInteger(v) ? undefined : 'must be "max" or a positive integer',
    seed: (v) => (Number.isInteger(v) ? undefined : 'must be an integer'),
    cachedTokensRate: (v) => (isRate(v) ? undefined : 'must be a number between 0 and 1'),
    templateOverhead: checkTemplateOverhead,
    invalidStructuredRate: (v) => (isRate(v) ? undefined : 'must be a number between 0 and 1'),
    invalidStructuredFirstOnly: (v) => (typeof v === 'boolean' ? undefined : 'must be true or false'),
    imageTokens: (v) => (Number.isInteger(v) && (v as number) >= 0 ? undefined : 'must be an integer >= 0'),
    outage: (v) =>
      v === 'refused' || v === 'unavailable' ? undefined : 'must be "refused" or "unavailable"',
    outageForMs: (v) => (isNonNegative(v) && v > 0 ? undefined : 'must be a number > 0'),
    revokeKeyAfterCalls: (v) =>
      Number.isInteger(v) && (v as number) >= 0 ? undefined : 'must be an integer >= 0',
    revokedStatus: (v) => (v === 401 || v === 402 || v === 403 ? undefined : 'must be 401, 402 or 403'),
    echoKeyInErrors: (v) => (typeof v === 'boolean' ? undefined : 'must be true or false'),
  };

const FIXED_FIELDS = new Set(['port', 'host', 'apiKey']);

/**
 * Validates an update against the current behaviour and returns the merged result, so a bad
 * update never leaves the server half-changed.
 */
function mergeBehaviour(
  current: FakeMaritacaBehaviour,
  update: FakeMaritacaBehaviourUpdate,
): FakeMaritacaBehaviour {
  const merged: Record<string, unknown> = { ...current };
  const touched = new Set<string>();
  for (const [key, value] of Object.entries(update)) {
    if (FIXED_FIELDS.has(key)) throw new RangeError(`${key} cannot be changed while the server runs`);
    const check = RUNTIME_FIELDS[key as keyof FakeMaritacaBehaviour];
    if (!check) throw new RangeError(`unknown option "${key}"`);
    if (value === undefined) continue;
    touched.add(key);
    if (value === null) {
      delete merged[key];
      continue;
    }
    const problem = check(value);
    if (problem) throw new RangeError(`${key} ${problem}`);
    // A copy, so the caller changing its object later cannot bypass validation.
    merged[key] = typeof value === 'object' ? structuredClone(value) : value;
  }
  const setsFixed = touched.has('latencyMs') && update.latencyMs !== null;
  const setsLogNormal =
    (touched.has('latencyMedianMs') && update.latencyMedianMs !== null) ||
    (touched.has('latencyP99Ms') && update.latencyP99Ms !== null);
  if (setsFixed && setsLogNormal) {
    throw new RangeError('latencyMs excludes latencyMedianMs and latencyP99Ms');
  }
  // Switching latency model in one update must not require clearing the other one by hand.
  if (setsFixed) {
    delete merged.latencyMedianMs;
    delete merged.latencyP99Ms;
  } else if (setsLogNormal) {
    delete merged.latencyMs;
  }
  const median = merged.latencyMedianMs as number | undefined;
  const p99 = merged.latencyP99Ms as number | undefined;
  if ((median === undefined) !== (p99 === undefined)) {
    throw new RangeError('latencyMedianMs and latencyP99Ms must be given together');
  }
  if (median !== undefined && p99 !== undefined && p99 < median) {
    throw new RangeError('latencyP99Ms must be at least latencyMedianMs');
  }
  // The duration belongs to one outage: ending the outage must not leave it to the next one.
  if (update.outage === null && (update.outageForMs ?? null) === null) delete merged.outageForMs;
  if (merged.outageForMs !== undefined && merged.outage === undefined) {
    throw new RangeError('outageForMs needs outage');
  }
  return merged as FakeMaritacaBehaviour;
}

function latencyOf(behaviour: FakeMaritacaBehaviour): Latency {
  if (behaviour.latencyMs !== undefined && behaviour.latencyMs > 0)
    return { kind: 'fixed', ms: behaviour.latencyMs };
  const { latencyMedianMs: median, latencyP99Ms: p99 } = behaviour;
  if (median !== undefined && p99 !== undefined) {
    return { kind: 'lognormal', mu: Math.log(median), sigma: Math.log(p99 / median) / Z_99 };
  }
  return { kind: 'none' };
}

/** Strips the `/api`, `/v1` (or `/api/v1`) prefixes base URLs may carry, and the query string. */
function routeOf(url: string | undefined): string {
  let path = url ?? '/';
  const query = path.indexOf('?');
  if (query >= 0) path = path.slice(0, query);
  if (path.startsWith('/api/')) path = path.slice(4);
  if (path.startsWith('/v1/')) path = path.slice(3);
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  return path;
}

function sendJson(
  res: http.ServerResponse,
  status: number,
  body: string,
  extraHeaders?: Record<string, string>,
): void {
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...extraHeaders,
  });
  res.end(body);
}

function openAiError(message: string, type: string): string {
  return JSON.stringify({ error: { message, type } });
}

/** FastAPI's `detail` body, which Maritaca's own refusals (401 and the like) use. */
function fastApiError(detail: string): string {
  return JSON.stringify({ detail });
}

/** What a gateway answers while the service behind it is down. */
const SERVICE_UNAVAILABLE = 'Service temporarily unavailable. Please try again later.';

/** Refusals of a key past `revokeKeyAfterCalls`, in the words each status usually comes with. */
const REVOKED_KEY_DETAIL: Readonly<Record<401 | 402 | 403, string>> = {
  401: 'Invalid or revoked API key',
  402: 'Saldo insuficiente. Adicione créditos à sua conta para continuar usando a API.',
  403: 'Forbidden: this API key is not allowed to use this resource',
};

/**
 * `body` as a careless server would send it under `echoKeyInErrors`: the token appended to every
 * message a client might log (a `detail` text, each FastAPI issue's `msg`, OpenAI's
 * `error.message`) and the whole header echoed under `request_headers`.
 */
function withCredentialEchoed(body: string, authorization: string): string {
  const token = authorization.replace(/^Bearer\s+/i, '');
  const suffix = ` (key: ${token})`;
  const echoed = JSON.parse(body) as Json;
  const { detail, error } = echoed;
  if (typeof detail === 'string') echoed.detail = detail + suffix;
  if (Array.isArray(detail)) {
    for (const issue of detail as Json[]) if (typeof issue.msg === 'string') issue.msg += suffix;
  }
  if (typeof error === 'object' && error !== null && typeof (error as Json).message === 'string') {
    (error as Json).message += suffix;
  }
  echoed.request_headers = { authorization };
  return JSON.stringify(echoed);
}

/** Reads the whole body; `undefined` when the client went away first, `null` when it is too large. */
function readBody(req: http.IncomingMessage): Promise<string | undefined | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (value: string | undefined | null): void => {
      if (settled) return;
      settled = true;
      resolve(value);
    };
    req.on('data', (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        settle(null);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () =>
      settle(
        chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks).toString('utf8'),
      ),
    );
    req.on('error', () => settle(undefined));
    req.on('close', () => settle(undefined));
  });
}

function emptyBilling(): FakeMaritacaBilling {
  return { calls: 0, promptTokens: 0, completionTokens: 0, costBRL: 0 };
}

/** The text of a message: its string content, or its text blocks one per line. */
function textOf(message: FakeChatMessage): string {
  return message.texts.join('\n');
}

function lastUserText(messages: readonly FakeChatMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i] as FakeChatMessage;
    if (message.role === 'user') return textOf(message);
  }
  return textOf(messages[messages.length - 1] as FakeChatMessage);
}

/**
 * The function the model must call: the one `tool_choice` names, or the first tool under
 * `"required"`. `"auto"` (or no `tool_choice`) with tools answers text, as a model does when it
 * judges no tool is needed: a fake cannot judge the need, and text is the answer every client
 * reads, so offering tools alone never changes what a client gets back.
 */
function forcedTool(request: FakeChatRequest): FakeChatTool | undefined {
  const choice = request.toolChoice;
  const tools = request.tools ?? [];
  if (choice === 'required') return tools[0];
  if (typeof choice === 'object') return tools.find((tool) => tool.name === choice.name);
  return undefined;
}

/** Derives the structured answers' seed from the main one, so the two streams differ. */
function structuredSeed(seed: number): number {
  return Math.imul((seed ^ 0x9e3779b9) >>> 0, 0x85ebca6b) >>> 0;
}

class FakeMaritaca implements FakeMaritacaServer {
  private readonly server: http.Server;
  private settings: FakeMaritacaBehaviour;
  private latency: Latency;
  private random: () => number;
  /** Decides which structured answers are broken; apart, so other decisions keep their sequence. */
  private structuredRandom: () => number;
  private readonly window = new SlidingWindow();
  private readonly inFlight = new Set<ChatExchange>();
  /** Bodies answered with structured output so far (for `invalidStructuredFirstOnly`). */
  private structuredSeen = new Set<string>();
  private readonly expectedAuthorization: string;
  private totalRequests = 0;
  private byRequestId = new Map<string, number>();
  private byStatus = new Map<number, number>();
  private currentConcurrency = 0;
  private peakConcurrency = 0;
  private billed: FakeMaritacaBilling = emptyBilling();
  private billedByRequestId = new Map<string, number>();
  private completionCounter = 0;
  private closing: Promise<void> | undefined;
  /** Set by close(): the port stays shut whatever the behaviour says. */
  private closed = false;
  private boundPort = 0;
  /** The address the port was first bound on, so a `'refused'` outage reopens exactly there. */
  private boundHost = '';
  private boundUrl = '';
  /** Closings and reopenings of the port, chained so that one never overlaps another. */
  private listenerSteps: Promise<void> = Promise.resolve();
  /** A closing of the port still draining, which a reopening must wait for. */
  private listenerShutting: Promise<void> | undefined;
  private outageTimer: NodeJS.Timeout | undefined;
  /** The outage clients met at the last look, to tell when one starts or ends. */
  private outageInForce: FakeMaritacaStats['outage'] = null;
  private outageStartedAt: number | null = null;
  private outageEndedAt: number | null = null;
  private outageCalls = 0;
  private outageWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];
  /** Chat calls carrying the right key since `revokeKeyAfterCalls` was set or the last reset. */
  private keyCalls = 0;
  private revokedCalls = 0;

  constructor(apiKey: string, behaviour: FakeMaritacaBehaviour) {
    this.expectedAuthorization = `Bearer ${apiKey}`;
    this.settings = mergeBehaviour({}, behaviour);
    this.latency = latencyOf(this.settings);
    const seed = this.settings.seed ?? Math.floor(Math.random() * 2 ** 32);
    this.random = mulberry32(seed);
    this.structuredRandom = mulberry32(structuredSeed(seed));
    this.server = http.createServer((req, res) => this.route(req, res));
  }

  get url(): string {
    return this.boundUrl;
  }

  get port(): number {
    return this.boundPort;
  }

  async listen(port: number, host: string): Promise<void> {
    await this.bind(port, host);
    const address = this.server.address() as AddressInfo;
    this.boundPort = address.port;
    this.boundHost = address.address;
    const hostInUrl = address.address.includes(':') ? `[${address.address}]` : address.address;
    this.boundUrl = `http://${hostInUrl}:${address.port}`;
    // An outage given at start begins once the port is known, so a closed one reopens on it.
    this.outageSettingsChanged();
  }

  private bind(port: number, host: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  stats(): FakeMaritacaStats {
    const byStatus: Record<string, number> = {};
    for (const [status, count] of this.byStatus) byStatus[String(status)] = count;
    return {
      totalRequests: this.totalRequests,
      byRequestId: Object.fromEntries(this.byRequestId),
      currentConcurrency: this.currentConcurrency,
      peakConcurrency: this.peakConcurrency,
      byStatus,
      billed: { ...this.billed },
      billedByRequestId: Object.fromEntries(this.billedByRequestId),
      outage: this.outageInForce,
      outageCalls: this.outageCalls,
      outageStartedAt: this.outageStartedAt,
      outageEndedAt: this.outageEndedAt,
      revokedCalls: this.revokedCalls,
    };
  }

  reset(): void {
    this.totalRequests = 0;
    this.structuredSeen = new Set();
    this.byRequestId = new Map();
    this.byStatus = new Map();
    this.billed = emptyBilling();
    this.billedByRequestId = new Map();
    // Calls whose client already left belong to whatever came before the reset: forgotten, so
    // they neither hold concurrency nor get billed into the next test's figures.
    for (const exchange of [...this.inFlight]) if (exchange.clientGone) this.finish(exchange);
    // Requests still in flight are real load, so the new peak starts from them, not from zero.
    this.peakConcurrency = this.currentConcurrency;
    this.window.clear();
    this.outageCalls = 0;
    this.revokedCalls = 0;
    this.keyCalls = 0;
    // A test starting afresh must not inherit the previous one's outage.
    if (this.settings.outage !== undefined) this.configure({ outage: null });
  }

  configure(update: FakeMaritacaBehaviourUpdate): void {
    const merged = mergeBehaviour(this.settings, update);
    this.settings = merged;
    this.latency = latencyOf(merged);
    if (update.seed !== undefined && update.seed !== null) {
      this.random = mulberry32(update.seed);
      this.structuredRandom = mulberry32(structuredSeed(update.seed));
    }
    // Setting the limit again, or lifting it, starts a fresh count toward it.
    if (update.revokeKeyAfterCalls !== undefined) this.keyCalls = 0;
    if (update.outage !== undefined || update.outageForMs !== undefined) this.outageSettingsChanged();
  }

  behaviour(): FakeMaritacaBehaviour {
    return { ...this.settings };
  }

  outageEnded(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the fake server is closed'));
    if (this.outageInForce === null) return Promise.resolve();
    return new Promise((resolve, reject) => this.outageWaiters.push({ resolve, reject }));
  }

  close(): Promise<void> {
    if (this.closing === undefined) {
      this.closed = true;
      clearTimeout(this.outageTimer);
      for (const waiter of this.outageWaiters.splice(0)) {
        waiter.reject(new Error('the fake server closed before the outage ended'));
      }
      this.closing = this.syncListener();
    }
    return this.closing;
  }

  /** The port should accept connections: the server is open and not in a `'refused'` outage. */
  private wantsListener(): boolean {
    return !this.closed && this.settings.outage !== 'refused';
  }

  /** (Re)starts the outage's timer, opens or shuts the port to match, and notes the change. */
  private outageSettingsChanged(): void {
    clearTimeout(this.outageTimer);
    this.outageTimer = undefined;
    const { outage, outageForMs } = this.settings;
    // Not unref'd: during a 'refused' outage this timer may be all that keeps a CLI process alive.
    if (outage !== undefined && outageForMs !== undefined && !this.closed) {
      this.outageTimer = setTimeout(() => this.configure({ outage: null }), outageForMs);
    }
    void this.syncListener();
    this.noteOutage();
  }

  /**
   * Brings the port to what is wanted. Refusing starts at once, before this returns; waiting for
   * the close to drain and reopening run as chained steps, each aiming at what is wanted when it
   * runs, so quick flips (or close() during a reopening) never leave the port open by mistake.
   */
  private syncListener(): Promise<void> {
    if (!this.wantsListener() && this.server.listening) this.shutListener();
    this.listenerSteps = this.listenerSteps.then(() => this.listenerStep());
    return this.listenerSteps;
  }

  private async listenerStep(): Promise<void> {
    if (!this.wantsListener() && this.server.listening) this.shutListener();
    if (this.listenerShutting !== undefined) {
      await this.listenerShutting;
      this.listenerShutting = undefined;
    }
    if (this.wantsListener() && !this.server.listening) await this.reopen();
    this.noteOutage();
  }

  /**
   * Stops accepting connections, so new ones are refused, and drops every open one with whatever
   * it was serving, as a server going down would. Work cut short by the server itself is not
   * billed: nobody is left to invoice.
   */
  private shutListener(): void {
    this.listenerShutting = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const exchange of [...this.inFlight]) {
      this.finish(exchange);
      exchange.res.socket?.destroy();
    }
    // Keep-alive sockets would otherwise keep serving, and hold the close until their idle timeout.
    this.server.closeAllConnections();
  }

  /** Listens again on the same address and port; retries while something else holds the port. */
  private async reopen(): Promise<void> {
    while (this.wantsListener()) {
      try {
        await this.bind(this.boundPort, this.boundHost);
        return;
      } catch {
        // Another process took the port during the outage: a restarting server would retry too.
        await new Promise((resolve) => setTimeout(resolve, REBIND_RETRY_MS));
      }
    }
  }

  /** Stamps the start or the end of an outage when what clients meet has changed, and wakes waiters. */
  private noteOutage(): void {
    if (this.closed) return;
    const before = this.outageInForce;
    const now =
      this.settings.outage === 'refused' || !this.server.listening
        ? 'refused'
        : (this.settings.outage ?? null);
    this.outageInForce = now;
    if (before === null && now !== null) {
      this.outageStartedAt = Date.now();
      this.outageEndedAt = null;
    } else if (before !== null && now === null) {
      this.outageEndedAt = Date.now();
      for (const waiter of this.outageWaiters.splice(0)) waiter.resolve();
    }
  }

  private route(req: http.IncomingMessage, res: http.ServerResponse): void {
    const route = routeOf(req.url);
    const method = req.method ?? 'GET';
    switch (route) {
      case '/chat/completions':
        if (method === 'POST') return void this.handleChat(req, res).catch(() => res.destroy());
        break;
      case '/models':
        if (method === 'GET') {
          if (this.settings.outage === 'unavailable') {
            return this.send(res, 503, fastApiError(SERVICE_UNAVAILABLE));
          }
          if (req.headers.authorization !== this.expectedAuthorization) {
            return this.send(res, 401, fastApiError('Invalid API key'));
          }
          return this.send(res, 200, MODEL_LIST_BODY);
        }
        break;
      case '/_stats':
        if (method === 'GET') return sendJson(res, 200, JSON.stringify(this.stats()));
        break;
      case '/_reset':
        if (method === 'POST') {
          this.reset();
          return sendJson(res, 200, JSON.stringify(this.stats()));
        }
        break;
      case '/_config':
        if (method === 'GET') return sendJson(res, 200, JSON.stringify(this.settings));
        if (method === 'POST') return void this.handleConfig(req, res).catch(() => res.destroy());
        break;
      default:
        return this.send(res, 404, fastApiError('Not Found'));
    }
    this.send(res, 405, fastApiError('Method Not Allowed'));
  }

  /**
   * Writes an answer of the API (the control endpoints use `sendJson`: they are the test's, not
   * Maritaca's); under `echoKeyInErrors` an error answer repeats the credential the client sent.
   */
  private send(
    res: http.ServerResponse,
    status: number,
    body: string,
    headers?: Record<string, string>,
  ): void {
    const authorization = res.req.headers.authorization;
    const echo = status >= 400 && this.settings.echoKeyInErrors === true && authorization !== undefined;
    sendJson(res, status, echo ? withCredentialEchoed(body, authorization) : body, headers);
  }

  private async handleConfig(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const text = await readBody(req);
    if (text === undefined) return;
    if (text === null)
      return sendJson(res, 413, openAiError('request body too large', 'invalid_request_error'));
    let update: unknown;
    try {
      update = text.trim() === '' ? {} : JSON.parse(text);
    } catch {
      return sendJson(res, 400, openAiError('body is not valid JSON', 'invalid_request_error'));
    }
    if (typeof update !== 'object' || update === null || Array.isArray(update)) {
      return sendJson(res, 400, openAiError('body must be a JSON object', 'invalid_request_error'));
    }
    try {
      this.configure(update as FakeMaritacaBehaviourUpdate);
    } catch (error) {
      return sendJson(res, 400, openAiError((error as Error).message, 'invalid_request_error'));
    }
    sendJson(res, 200, JSON.stringify(this.settings));
  }

  private async handleChat(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const exchange = this.begin(req, res);
    // The gateway in front of a service that is down answers before anything is checked.
    if (this.settings.outage === 'unavailable') {
      this.outageCalls++;
      return this.respond(exchange, 503, fastApiError(SERVICE_UNAVAILABLE));
    }
    // Auth comes before the body so a wrong key costs nothing, like a real gateway.
    if (req.headers.authorization !== this.expectedAuthorization) {
      return this.respond(exchange, 401, fastApiError('Invalid API key'));
    }
    const { revokeKeyAfterCalls, revokedStatus = 401 } = this.settings;
    if (revokeKeyAfterCalls !== undefined && this.keyCalls >= revokeKeyAfterCalls) {
      this.revokedCalls++;
      return this.respond(exchange, revokedStatus, fastApiError(REVOKED_KEY_DETAIL[revokedStatus]));
    }
    this.keyCalls++;
    const text = await readBody(req);
    if (exchange.done || text === undefined) return;
    if (text === null) {
      return this.respond(exchange, 413, openAiError('request body too large', 'invalid_request_error'), {
        connection: 'close',
      });
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return this.respond(
        exchange,
        422,
        JSON.stringify({ detail: [{ loc: ['body', 0], msg: 'JSON decode error', type: 'json_invalid' }] }),
      );
    }
    const accepted = parseFakeChatRequest(body);
    if (Array.isArray(accepted)) return this.respond(exchange, 422, JSON.stringify({ detail: accepted }));
    const parsed: ParsedChatRequest = {
      ...accepted,
      maxTokens: accepted.maxTokens ?? FAKE_DEFAULT_MAX_TOKENS,
    };
    if (!MODELS.has(parsed.model)) {
      return this.respond(
        exchange,
        400,
        openAiError(
          `Model '${parsed.model}' not found. Available models: ${SERVED_MODELS.join(', ')}`,
          'invalid_request_error',
        ),
      );
    }
    if ((body as Json).stream === true) {
      return this.respond(
        exchange,
        400,
        openAiError('stream is not supported by the fake server', 'invalid_request_error'),
      );
    }
    const forced = FORCED_STATUS.exec(lastUserText(parsed.messages));
    if (forced) {
      const status = Number(forced[1]);
      return this.respond(
        exchange,
        status,
        openAiError(`Status ${status} forced by the request's content`, 'invalid_request_error'),
        status === 429 ? { 'retry-after': '1' } : {},
      );
    }
    const settings = this.settings;
    if (settings.rpm !== undefined) {
      const waitMs = this.window.tryAdmit(performance.now(), settings.rpm);
      if (waitMs > 0) {
        return this.respond(
          exchange,
          429,
          openAiError(`Rate limit of ${settings.rpm} requests per minute exceeded`, 'rate_limit_error'),
          { 'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))) },
        );
      }
    }
    // Always three draws per admitted request, whatever is configured, so a seed replays the
    // same decisions even after the latency model or the rates change.
    const roll = this.random();
    const latencyMs = this.sampleLatency(this.random(), this.random());
    const hangRate = settings.hangRate ?? 0;
    const errorRate500 = settings.errorRate500 ?? 0;
    const errorRate429 = settings.errorRate429 ?? 0;
    if (roll < hangRate) {
      exchange.phase = { kind: 'hanging', worstCase: this.usageOf(parsed, parsed.maxTokens) };
      return;
    }
    if (roll < hangRate + errorRate500) {
      return this.respondAfter(
        exchange,
        latencyMs,
        500,
        openAiError('Internal server error', 'server_error'),
      );
    }
    if (roll < hangRate + errorRate500 + errorRate429) {
      return this.respond(exchange, 429, openAiError('Too many requests', 'rate_limit_error'), {
        'retry-after': String(settings.retryAfterSeconds ?? 1),
      });
    }
    const answer = this.completion(parsed);
    // From here on the server is generating: a client leaving no longer stops the work.
    exchange.phase = { kind: 'generating', usage: answer.usage };
    this.respondAfter(exchange, latencyMs, 200, answer.body);
  }

  /** Prompt and completion counts of a call, with the cached share `cachedTokensRate` gives. */
  private usageOf(request: ParsedChatRequest, completionTokens: number): Usage {
    const promptTokens = promptTokensOf(request, this.settings);
    return {
      model: request.model,
      promptTokens,
      completionTokens,
      cachedPromptTokens: Math.floor(promptTokens * (this.settings.cachedTokensRate ?? 0)),
    };
  }

  private completion(request: ParsedChatRequest): { body: string; usage: Usage } {
    const forced = forcedTool(request);
    const format = request.responseFormat;
    // A forced call wins over a response format, as with OpenAI: the answer is the call.
    const parts = forced
      ? this.toolCallAnswer(request, forced)
      : format && format.type !== 'text'
        ? this.jsonAnswer(request, format.type === 'json_schema' ? format.schema : undefined)
        : this.textAnswer(request);
    const usage = this.usageOf(request, parts.completionTokens);
    const { promptTokens, completionTokens, cachedPromptTokens } = usage;
    this.completionCounter++;
    const body = JSON.stringify({
      id: `chatcmpl-fake-${this.completionCounter}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: request.model,
      choices: [{ index: 0, message: parts.message, finish_reason: parts.finishReason }],
      usage: {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
        prompt_tokens_details: { cached_tokens: cachedPromptTokens },
      },
    });
    return { body, usage };
  }

  /**
   * `Resposta para: <last user text>`, shaped by `replyTokens` and cut at `max_tokens`. After a
   * tool result the reply also quotes it, as a model answering from the result would.
   */
  private textAnswer(request: ParsedChatRequest): AnswerParts {
    const replyTokens = this.settings.replyTokens;
    const messages = request.messages;
    const last = messages[messages.length - 1] as FakeChatMessage;
    let base = REPLY_PREFIX + lastUserText(messages);
    if (last.role === 'tool') base += ` (resultado da ferramenta: ${textOf(last)})`;
    let content = base;
    if (replyTokens !== undefined) {
      const target = replyTokens === 'max' ? request.maxTokens : Math.min(replyTokens, request.maxTokens);
      content = fakeTextOfTokens(base, target, request.model);
    } else if (fakeCompletionTokens(base, request.model) > request.maxTokens) {
      content = fakeTextOfTokens(base, request.maxTokens, request.model);
    }
    const completionTokens = fakeCompletionTokens(content, request.model);
    return {
      message: { role: 'assistant', content },
      completionTokens,
      finishReason: completionTokens >= request.maxTokens ? 'length' : 'stop',
    };
  }

  /**
   * JSON content: a value of the `json_schema` format's schema, or `{"answer": ...}` for a
   * `json_object` format; broken at `invalidStructuredRate`, cut at `max_tokens` (`replyTokens`
   * does not apply: a structured answer has the length of its value).
   */
  private jsonAnswer(request: ParsedChatRequest, schema: Json | undefined): AnswerParts {
    const valid = schema
      ? exampleOfJsonSchema(schema)
      : { answer: REPLY_PREFIX + lastUserText(request.messages) };
    const text = this.structuredText(schema ?? { type: 'object' }, valid, request.canonical);
    const content = longestPrefixWithin(text, request.maxTokens, request.model);
    const completionTokens = fakeCompletionTokens(content, request.model);
    return {
      message: { role: 'assistant', content },
      completionTokens,
      finishReason: completionTokens >= request.maxTokens ? 'length' : 'stop',
    };
  }

  /**
   * Exactly one call to the forced function, its arguments a value of its `parameters` schema
   * (broken at `invalidStructuredRate`). The id is a hash of the request, so the same request
   * gets the same id. Completion tokens count the name and the arguments; arguments that would
   * pass `max_tokens` are cut there, with `finish_reason: "length"`.
   */
  private toolCallAnswer(request: ParsedChatRequest, tool: FakeChatTool): AnswerParts {
    const schema = tool.parameters ?? { type: 'object' };
    const text = this.structuredText(schema, exampleOfJsonSchema(schema), request.canonical);
    const nameTokens = fakeCompletionTokens(tool.name, request.model);
    const args = longestPrefixWithin(text, Math.max(0, request.maxTokens - nameTokens), request.model);
    const completionTokens = nameTokens + fakeCompletionTokens(args, request.model);
    const id = `call_${createHash('sha256').update(request.canonical).digest('hex').slice(0, 24)}`;
    return {
      message: {
        role: 'assistant',
        content: null,
        tool_calls: [{ id, type: 'function', function: { name: tool.name, arguments: args } }],
      },
      completionTokens,
      finishReason: completionTokens >= request.maxTokens ? 'length' : 'tool_calls',
    };
  }

  /**
   * The JSON text of `valid`, or a broken answer at `invalidStructuredRate`. One draw per
   * structured answer whatever the rate, so changing the rate keeps the sequence.
   */
  private structuredText(schema: unknown, valid: unknown, canonical: string): string {
    const roll = this.structuredRandom();
    const rate = this.settings.invalidStructuredRate ?? 0;
    const askedBefore = this.structuredSeen.has(canonical);
    this.structuredSeen.add(canonical);
    if (roll >= rate || (askedBefore && this.settings.invalidStructuredFirstOnly))
      return JSON.stringify(valid);
    return invalidJsonAnswer(schema, valid, roll / rate).text;
  }

  private sampleLatency(uniform1: number, uniform2: number): number {
    const latency = this.latency;
    if (latency.kind === 'none') return 0;
    if (latency.kind === 'fixed') return latency.ms;
    // Box-Muller; 1 - u keeps the logarithm's argument in (0, 1].
    const z = Math.sqrt(-2 * Math.log(1 - uniform1)) * Math.cos(2 * Math.PI * uniform2);
    return Math.exp(latency.mu + latency.sigma * z);
  }

  private begin(req: http.IncomingMessage, res: http.ServerResponse): ChatExchange {
    const header = req.headers['x-request-id'];
    const requestId = typeof header === 'string' && header !== '' ? header : NO_REQUEST_ID;
    const exchange: ChatExchange = {
      res,
      requestId,
      phase: { kind: 'receiving' },
      clientGone: false,
      done: false,
      timer: undefined,
    };
    this.totalRequests++;
    this.byRequestId.set(requestId, (this.byRequestId.get(requestId) ?? 0) + 1);
    this.currentConcurrency++;
    if (this.currentConcurrency > this.peakConcurrency) this.peakConcurrency = this.currentConcurrency;
    this.inFlight.add(exchange);
    // 'close' also follows every answer written; only one before the end is a client giving up.
    res.once('close', () => {
      if (!res.writableEnded) this.clientLeft(exchange);
    });
    return exchange;
  }

  /** A client gave up (timeout, abort) before its answer: what that costs depends on the phase. */
  private clientLeft(exchange: ChatExchange): void {
    if (exchange.done) return;
    exchange.clientGone = true;
    const phase = exchange.phase;
    if (phase.kind === 'generating') return; // the timer finishes it, and bills it, on time
    if (phase.kind === 'hanging') this.bill(exchange.requestId, phase.worstCase);
    this.finish(exchange);
  }

  private bill(requestId: string, usage: Usage): void {
    const cost = priceOf(usage.model, usage);
    const billed = this.billed;
    billed.calls++;
    billed.promptTokens += usage.promptTokens;
    billed.completionTokens += usage.completionTokens;
    billed.costBRL = addCosts(billed.costBRL, cost);
    this.billedByRequestId.set(requestId, addCosts(this.billedByRequestId.get(requestId) ?? 0, cost));
  }

  private finish(exchange: ChatExchange): void {
    if (exchange.done) return;
    exchange.done = true;
    if (exchange.timer !== undefined) clearTimeout(exchange.timer);
    this.inFlight.delete(exchange);
    this.currentConcurrency--;
  }

  private respondAfter(exchange: ChatExchange, delayMs: number, status: number, body: string): void {
    if (delayMs <= 0) return this.respond(exchange, status, body);
    exchange.timer = setTimeout(() => this.respond(exchange, status, body), delayMs);
  }

  /**
   * Counts and bills the answer before writing it, so a client reading `/_stats` right after
   * sees it. A generated answer whose client already left is billed but neither counted nor sent.
   */
  private respond(
    exchange: ChatExchange,
    status: number,
    body: string,
    headers?: Record<string, string>,
  ): void {
    if (exchange.done) return;
    this.finish(exchange);
    if (exchange.phase.kind === 'generating') this.bill(exchange.requestId, exchange.phase.usage);
    if (exchange.clientGone) return;
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
    this.send(exchange.res, status, body, headers);
  }
}
