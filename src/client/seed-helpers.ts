import { estimateBatchCost } from '../activities/estimate-cost';
import {
  DEFAULT_MAX_OUTPUT_TOKENS,
  DEFAULT_MODEL,
  completionsQuery,
  publicEstimate,
  type BatchEstimate,
  type BatchOptions,
  type BatchRequest,
  type ChatMessage,
  type ChatResult,
  type PriceTable,
  type RequestOutcome,
} from '../shared';
import type { BatchHandle } from './batch-client';
import { MaritacaRequestError } from './errors';
import { validateBatchInput } from './validate';

/** One input of the seed helpers: a list of messages, or a string taken as one user message. */
export type SeedInput = ChatMessage[] | string;

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
}

/** Turns seed inputs into batch requests (ids are the indices). */
export function seedRequests(inputs: readonly SeedInput[], options: SeedBatchOptions = {}): BatchRequest[] {
  return inputs.map((input) => ({
    messages: typeof input === 'string' ? [{ role: 'user', content: input }] : input,
    ...(options.maxTokens !== undefined ? { maxTokens: options.maxTokens } : {}),
  }));
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
  };
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
 * against `prices` (default: the table `loadPriceTable` gives).
 */
export function estimateSeedInputs(
  inputs: readonly SeedInput[],
  options: { maxOutputTokens?: number; model?: string } = {},
  prices?: PriceTable,
): BatchEstimate {
  const model = options.model ?? DEFAULT_MODEL;
  const maxTokens = options.maxOutputTokens ?? DEFAULT_MAX_OUTPUT_TOKENS;
  const input = validateBatchInput(
    { requests: seedRequests(inputs), options: { model, maxOutputTokens: maxTokens } },
    prices ? { prices } : {},
  );
  return publicEstimate(
    estimateBatchCost(
      { model, requests: input.requests!.map((r) => ({ messages: r.messages, model, maxTokens })) },
      prices,
    ),
  );
}
