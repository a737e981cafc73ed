import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import OpenAI from 'openai';
import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import { estimateBatchCost } from './estimate-cost';
import { readStructured } from './structured-output';
import type { BatchStore, OutcomeLog } from '../store';
import {
  FailureTypes,
  HEARTBEAT_TIMEOUT_FACTOR,
  priceOf,
  sentResponseFormat,
  type PriceTable,
  type ToolCall,
  type CallFailureDetails,
  type CallMaritacaInput,
  type CallMaritacaOutput,
  type CallMaritacaRunInput,
  type CallMaritacaRunOutput,
  type ChatResult,
  type RequestOutcome,
  type RunCallFailure,
  type RunCallOutcome,
  RUN_CALL_FAILED_MESSAGE,
} from '../shared';

/** How a worker reaches Maritaca. The key stays here: it never enters workflow input or history. */
export interface MaritacaConnectionOptions {
  /** Maritaca API key (`MARITACA_API_KEY`). */
  apiKey: string;
  /** API base URL (`MARITACA_BASE_URL`), e.g. `https://chat.maritaca.ai/api`. */
  baseURL: string;
  /** Per-call HTTP timeout in milliseconds. */
  requestTimeoutMs?: number;
  /**
   * How often a running call heartbeats. Default: what the batch chose (`heartbeatInterval`,
   * read back from the activity's heartbeat timeout), else 1 s.
   */
  heartbeatIntervalMs?: number;
  /** Where answers go for calls that ask for it (`store` input). */
  store?: BatchStore;
  /** Prices calls are charged at (default: the built-in table). */
  prices?: PriceTable;
}

/**
 * Maritaca answers some errors FastAPI-style (`{"detail": ...}`), which the OpenAI SDK does not
 * read; rewriting them as `{"error": {"message": ...}}` lets every error keep the server's words.
 */
async function fetchWithReadableErrors(url: string | URL | Request, init?: RequestInit): Promise<Response> {
  const response = await fetch(url, init);
  if (response.ok) return response;
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const detail = (body as { detail?: unknown } | undefined)?.detail;
  const normalized =
    body && typeof body === 'object' && 'error' in body
      ? text
      : JSON.stringify({
          error: { message: detail === undefined ? text || response.statusText : stringify(detail) },
        });
  const headers = new Headers(response.headers);
  headers.set('content-type', 'application/json');
  headers.delete('content-length');
  return new Response(normalized, { status: response.status, statusText: response.statusText, headers });
}

function stringify(detail: unknown): string {
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail)) {
    // FastAPI validation errors: [{ loc: ['body', 'messages'], msg: 'Field required' }]
    return detail
      .map((d: { loc?: unknown[]; msg?: string }) =>
        d && typeof d === 'object' && d.msg ? `${(d.loc ?? []).join('.')}: ${d.msg}` : JSON.stringify(d),
      )
      .join('; ');
  }
  return JSON.stringify(detail);
}

/** Seconds or HTTP date in `Retry-After` (or milliseconds in `retry-after-ms`) as milliseconds. */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number | undefined {
  const ms = headers?.get('retry-after-ms');
  if (ms && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const value = headers?.get('retry-after');
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** What one call needs from the activity running it. */
interface CallContext {
  /** The activity's attempt number. */
  attempt: number;
  /** Aborts the HTTP call (the activity was cancelled). */
  signal: AbortSignal;
  /** The batch's workflow id, for Maritaca's `X-Request-Id`. */
  workflowId: string | undefined;
  /** Where a run records its answers (one log for the run); a single call writes its own object. */
  log?: OutcomeLog;
}

/**
 * The Maritaca client of a worker and the one call both activities make with it: a chat
 * completion through the OpenAI SDK with `maxRetries: 0` (the workflow decides every retry),
 * answered with the output or thrown as the `ApplicationFailure` the workflow classifies.
 */
function maritacaCaller(connection: MaritacaConnectionOptions) {
  const client = new OpenAI({
    apiKey: connection.apiKey,
    baseURL: connection.baseURL,
    maxRetries: 0,
    timeout: connection.requestTimeoutMs ?? 120_000,
    fetch: fetchWithReadableErrors,
  });
  const scrub = (text: string): string =>
    connection.apiKey ? text.split(connection.apiKey).join('[redacted]') : text;

  return async function callOnce(input: CallMaritacaInput, call: CallContext): Promise<CallMaritacaOutput> {
    const { attempt } = call;
    const startedAt = Date.now();
    // A signal of its own per call: the SDK listens on it, and a run makes many calls under one
    // activity signal, which would otherwise collect a listener per call.
    const controller = new AbortController();
    const abort = (): void => controller.abort();
    if (call.signal.aborted) controller.abort();
    else call.signal.addEventListener('abort', abort, { once: true });
    try {
      const completion = await client.chat.completions.create(
        // Maritaca's message and response-format shapes (image blocks, a local schema kept out)
        // are not the OpenAI SDK's types; the SDK passes the body through as it is.
        requestBody(input) as unknown as ChatCompletionCreateParamsNonStreaming,
        {
          signal: controller.signal,
          ...(input.timeoutMs !== undefined
            ? { timeout: Math.min(input.timeoutMs, connection.requestTimeoutMs ?? input.timeoutMs) }
            : {}),
          headers: { 'X-Request-Id': `${call.workflowId ?? 'standalone'}/${input.requestId}` },
        },
      );
      const elapsedMs = Date.now() - startedAt;
      const choice = completion.choices?.[0];
      const toolCalls = (choice?.message?.tool_calls ?? []) as ToolCall[];
      // An answer that only calls tools may come without text.
      if (!choice || !(typeof choice.message?.content === 'string' || toolCalls.length > 0)) {
        throw ApplicationFailure.create({
          type: FailureTypes.InvalidResponse,
          message: 'Maritaca answered without a message in choices[0]',
          nonRetryable: true,
          details: [{ attempt } satisfies CallFailureDetails],
        });
      }
      const usage = completion.usage;
      const usageMissing = typeof usage?.prompt_tokens !== 'number';
      const promptTokens = usage?.prompt_tokens ?? 0;
      const completionTokens = usage?.completion_tokens ?? 0;
      const cachedPromptTokens = usage?.prompt_tokens_details?.cached_tokens ?? undefined;
      const content = choice.message.content ?? '';
      const structured = readStructured(input, { content: choice.message.content, tool_calls: toolCalls });
      const result: ChatResult = {
        generations: [
          {
            text: content,
            message: {
              role: 'assistant',
              content,
              ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
            },
            generationInfo: { finishReason: choice.finish_reason ?? null },
          },
        ],
        llmOutput: {
          tokenUsage: {
            promptTokens,
            completionTokens,
            totalTokens: usage?.total_tokens ?? promptTokens + completionTokens,
            ...(cachedPromptTokens ? { cachedPromptTokens } : {}),
          },
          model: completion.model || input.model,
        },
      };
      // Without usage the bill is unknown: the outcome carries the call's worst case.
      const cost = usageMissing
        ? worstCaseCost(input, connection.prices)
        : priceOf(
            input.model,
            { promptTokens, completionTokens, ...(cachedPromptTokens ? { cachedPromptTokens } : {}) },
            connection.prices,
          );
      if (structured.toolCalls) result.toolCalls = structured.toolCalls;
      if (structured.problem !== undefined) {
        // Billed, but not what was asked: the workflow counts the cost and asks again.
        throw ApplicationFailure.create({
          type: FailureTypes.InvalidStructuredOutput,
          message: structured.problem,
          nonRetryable: true,
          details: [{ attempt, billedCost: cost } satisfies CallFailureDetails],
        });
      }
      if (structured.parsed !== undefined) result.parsed = structured.parsed;
      const usageSummary = { promptTokens, completionTokens };
      const missing = usageMissing ? { usageMissing: true } : {};
      if (input.store && connection.store) {
        // Written before the activity reports back: if the report is lost and the call retried,
        // the second line replaces the first when read.
        const outcome: RequestOutcome = {
          id: input.requestId,
          index: input.store.index,
          ok: true,
          result,
          attempts: attempt + (input.store.attemptsBefore ?? 0),
          cost,
        };
        await (call.log
          ? call.log.append(outcome)
          : connection.store.appendOutcomes(input.store.results, [outcome]));
        if (!input.store.returnResult) return { usage: usageSummary, cost, attempt, elapsedMs, ...missing };
      }
      return { result, usage: usageSummary, cost, attempt, elapsedMs, ...missing };
    } catch (err) {
      if (call.signal.aborted) throw new CancelledFailure('Maritaca call cancelled');
      throw toFailure(err, { attempt }, scrub);
    } finally {
      call.signal.removeEventListener('abort', abort);
    }
  };
}

/**
 * Sends a heartbeat every interval while `work` runs (none at the start: work shorter than the
 * interval costs no heartbeat action) and counts them. The interval is the connection's, else
 * the one the batch chose (read back from the activity's heartbeat timeout), else 1 s.
 */
async function withHeartbeats<T>(
  connection: MaritacaConnectionOptions,
  work: (heartbeatsSoFar: () => number) => Promise<T>,
): Promise<T> {
  const ctx = Context.current();
  const timeoutMs = ctx.info.heartbeatTimeoutMs;
  const intervalMs =
    connection.heartbeatIntervalMs ?? (timeoutMs ? timeoutMs / HEARTBEAT_TIMEOUT_FACTOR : 1000);
  let heartbeats = 0;
  const timer = setInterval(() => {
    heartbeats += 1;
    ctx.heartbeat();
  }, intervalMs);
  try {
    return await work(() => heartbeats);
  } finally {
    clearInterval(timer);
  }
}

/** The call context of the activity running now. */
function currentCall(): CallContext {
  const ctx = Context.current();
  return {
    attempt: ctx.info.attempt,
    signal: ctx.cancellationSignal,
    workflowId: ctx.info.workflowExecution?.workflowId,
  };
}

/** Builds the `callMaritaca` activity: one chat completion, one outcome. */
export function createCallMaritaca(connection: MaritacaConnectionOptions) {
  const callOnce = maritacaCaller(connection);

  /** Calls Maritaca once; failures are mapped to retryable or non-retryable `ApplicationFailure`s. */
  return async function callMaritaca(input: CallMaritacaInput): Promise<CallMaritacaOutput> {
    return withHeartbeats(connection, async (heartbeats) => {
      try {
        const output = await callOnce(input, currentCall());
        return heartbeats() > 0 ? { ...output, heartbeats: heartbeats() } : output;
      } catch (err) {
        if (!(err instanceof ApplicationFailure) || heartbeats() === 0) throw err;
        const details = (err.details?.[0] ?? {}) as CallFailureDetails;
        throw ApplicationFailure.create({
          type: err.type ?? undefined,
          message: err.message,
          nonRetryable: err.nonRetryable ?? false,
          details: [{ ...details, heartbeats: heartbeats() }],
          ...(err.nextRetryDelay !== undefined && err.nextRetryDelay !== null
            ? { nextRetryDelay: err.nextRetryDelay }
            : {}),
        });
      }
    });
  };
}

/**
 * Failures that belong to the request alone (Maritaca refused or misanswered this request): the
 * run goes on with its next call. Any other failure (a 429, an outage, a bad key) is the API's
 * state, so the run stops there and gives its remaining calls back to the workflow, which decides.
 */
const REQUEST_OWN_FAILURES: ReadonlySet<string> = new Set([
  FailureTypes.BadRequest,
  FailureTypes.InvalidResponse,
  FailureTypes.InvalidStructuredOutput,
]);

/**
 * Builds the `callMaritacaRun` activity: several requests called one after another in one slot
 * of the batch's window, with one outcome each, so a failure resends none of the others.
 */
export function createCallMaritacaRun(connection: MaritacaConnectionOptions) {
  const callOnce = maritacaCaller(connection);

  /** Calls each request in turn; never throws for a call's own failure (it is that call's outcome). */
  return async function callMaritacaRun(input: CallMaritacaRunInput): Promise<CallMaritacaRunOutput> {
    return withHeartbeats(connection, async (heartbeats) => {
      const call = { ...currentCall(), ...runLog(connection.store, input) };
      let outcomes: RunCallOutcome[];
      try {
        outcomes = await callInTurn(input, call);
      } catch (err) {
        await call.log?.close().catch(() => undefined);
        throw err;
      }
      // Answers an S3 log still holds are written before the run reports them. If that fails,
      // the run fails, and the workflow reads back what the store has, as for a lost worker
      // (the calls whose answers were not written were billed).
      try {
        await call.log?.close();
      } catch (err) {
        throw ApplicationFailure.create({
          type: (err as Error).name || 'Error',
          message: (err as Error).message,
          details: [{ attempt: call.attempt, billing: 'unknown' } satisfies CallFailureDetails],
        });
      }
      return { outcomes, heartbeats: heartbeats() };
    });
  };

  /** Calls each request of a run in turn, collecting one outcome per request. */
  async function callInTurn(input: CallMaritacaRunInput, call: CallContext): Promise<RunCallOutcome[]> {
    const outcomes: RunCallOutcome[] = [];
    const startedAt = Date.now();
    let stopped = false;
    for (const request of input.calls) {
      if (input.startWithinMs !== undefined && Date.now() - startedAt >= input.startWithinMs) stopped = true;
      if (stopped || call.signal.aborted) {
        outcomes.push({ kind: 'not_started' });
        continue;
      }
      try {
        outcomes.push({ kind: 'answered', output: await callOnce(request, call) });
      } catch (err) {
        if (err instanceof CancelledFailure) {
          outcomes.push({ kind: 'aborted' });
          stopped = true;
          continue;
        }
        const failure = err as ApplicationFailure;
        const failed: RunCallFailure = {
          type: failure.type ?? FailureTypes.ConnectionError,
          message: failure.message,
          nonRetryable: failure.nonRetryable ?? false,
          details: (failure.details?.[0] ?? { attempt: call.attempt }) as CallFailureDetails,
        };
        outcomes.push({ kind: 'failed', failure: failed });
        // Logged as a failed single-call activity would be, so the worker's log reads the same.
        Context.current().log.warn(RUN_CALL_FAILED_MESSAGE, {
          requestId: request.requestId,
          attempt: request.requestAttempt?.number ?? call.attempt,
          ...(request.requestAttempt ? { maximumAttempts: request.requestAttempt.of } : {}),
          error: { ...failed, details: [failed.details] },
        });
        stopped = !REQUEST_OWN_FAILURES.has(failure.type ?? '');
      }
    }
    return outcomes;
  }
}

/** One log for a run's answers, when they go to the store (every call of a run shares one batch's results). */
function runLog(store: BatchStore | undefined, input: CallMaritacaRunInput): { log?: OutcomeLog } {
  const stored = input.calls.flatMap((c) => (c.store ? [c.store] : []));
  if (!store || stored.length === 0) return {};
  return {
    log: store.outcomeLog(
      stored[0]!.results,
      stored.map((s) => s.index),
    ),
  };
}

/** The chat completions body of a call, in Maritaca's terms (snake_case; absent fields left out). */
function requestBody(input: CallMaritacaInput): Record<string, unknown> {
  const body: Record<string, unknown> = {
    model: input.model,
    messages: input.messages,
    max_tokens: input.maxTokens,
    stream: false,
  };
  const optional: [string, unknown][] = [
    ['temperature', input.temperature],
    ['top_p', input.topP],
    ['stop', input.stop],
    ['tools', input.tools],
    ['tool_choice', input.toolChoice],
    ['response_format', input.responseFormat && sentResponseFormat(input.responseFormat)],
    ['seed', input.seed],
    ['frequency_penalty', input.frequencyPenalty],
    ['presence_penalty', input.presencePenalty],
  ];
  for (const [name, value] of optional) if (value !== undefined) body[name] = value;
  return body;
}

/** The most a call can cost: its prompt's worst case (as estimated) and `max_tokens` of answer. */
function worstCaseCost(input: CallMaritacaInput, prices: PriceTable | undefined): number {
  return estimateBatchCost(
    {
      model: input.model,
      requests: [{ model: input.model, messages: input.messages, maxTokens: input.maxTokens }],
    },
    prices,
  ).maxCost;
}

/** Connection errors that prove the request never reached Maritaca, so nothing was billed. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Whether an error (or one of its causes) shows the request was never sent. */
function neverSent(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; depth += 1) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NOT_SENT_CODES.has(code)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** How providers word an exhausted balance or quota (Maritaca answers in Portuguese). */
const QUOTA_MESSAGE =
  /insufficient[_ ](quota|balance|credits?|funds)|quota exceeded|exceeded your (current )?quota|saldo insuficiente|sem saldo|cr[ée]ditos? insuficientes?|limite de gastos/i;

/** HTTP statuses after which Maritaca may still have generated (and billed) the answer. */
const MAYBE_BILLED_STATUSES = new Set([408, 502, 504]);

/** Maps an SDK error to the `ApplicationFailure` Temporal retries (or not). */
function toFailure(err: unknown, base: { attempt: number }, scrub: (text: string) => string): unknown {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof OpenAI.APIConnectionError) {
    const timedOut = err instanceof OpenAI.APIConnectionTimeoutError;
    const billing = timedOut || !neverSent(err) ? { billing: 'unknown' as const } : {};
    return ApplicationFailure.create({
      type: FailureTypes.ConnectionError,
      message: scrub(timedOut ? 'Maritaca call timed out' : `Could not reach Maritaca: ${err.message}`),
      details: [{ ...base, ...billing } satisfies CallFailureDetails],
    });
  }
  if (err instanceof OpenAI.APIError && err.status !== undefined) {
    const status = err.status;
    const message = scrub(err.message);
    const billing = MAYBE_BILLED_STATUSES.has(status) ? { billing: 'unknown' as const } : {};
    const details: CallFailureDetails[] = [{ status, ...base, ...billing }];
    // An exhausted balance or quota is the account's state, whatever status carries it.
    if (status === 402 || ((status === 429 || status === 403) && QUOTA_MESSAGE.test(message))) {
      return ApplicationFailure.create({
        type: FailureTypes.AccountError,
        message,
        details,
        nonRetryable: true,
      });
    }
    if (status === 429) {
      const delay = retryAfterMs(err.headers);
      return ApplicationFailure.create({
        type: FailureTypes.RateLimited,
        message,
        details: [{ status, ...base, ...(delay !== undefined ? { retryAfterMs: delay } : {}) }],
        ...(delay !== undefined ? { nextRetryDelay: Math.max(delay, 1) } : {}),
      });
    }
    if (status === 401 || status === 403) {
      return ApplicationFailure.create({
        type: FailureTypes.AuthenticationError,
        message,
        details,
        nonRetryable: true,
      });
    }
    if (status === 408 || status >= 500) {
      return ApplicationFailure.create({ type: FailureTypes.ServerError, message, details });
    }
    return ApplicationFailure.create({ type: FailureTypes.BadRequest, message, details, nonRetryable: true });
  }
  const message = scrub(err instanceof Error ? err.message : String(err));
  return ApplicationFailure.create({
    type: FailureTypes.ConnectionError,
    message,
    details: [{ ...base, billing: 'unknown' } satisfies CallFailureDetails],
  });
}
