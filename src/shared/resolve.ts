import { DEFAULT_MAX_OUTPUT_TOKENS } from './constants';
import { toMaritacaMessage } from './chat-content';
import { DEFAULT_MODEL } from './prices';
import type {
  BatchEstimate,
  BatchOptions,
  BatchRequest,
  CallMaritacaInput,
  DetailedEstimate,
  EstimateCostInput,
} from './types';

/** Request fields the batch options may give a default for, taken as a whole (never merged). */
const CHAT_FEATURES = [
  'tools',
  'toolChoice',
  'responseFormat',
  'seed',
  'frequencyPenalty',
  'presencePenalty',
] as const;

/**
 * The call each request becomes: its id (the index when it has none), and its model,
 * `max_tokens`, temperature and stop sequences with the batch options filling what it leaves out.
 * The workflow, the estimate and the CLI all use this, so they agree on every request.
 */
export function resolveCalls(
  requests: readonly BatchRequest[],
  options: BatchOptions = {},
  startIndex = 0,
): CallMaritacaInput[] {
  const defaultModel = options.model ?? DEFAULT_MODEL;
  return requests.map((request, offset) => {
    const call: CallMaritacaInput = {
      requestId: request.id ?? String(startIndex + offset),
      model: request.model ?? defaultModel,
      messages: request.messages.map(toMaritacaMessage),
      maxTokens: request.maxTokens ?? options.maxOutputTokens ?? DEFAULT_MAX_OUTPUT_TOKENS,
    };
    const temperature = request.temperature ?? options.temperature;
    if (temperature !== undefined) call.temperature = temperature;
    if (request.topP !== undefined) call.topP = request.topP;
    const stop = request.stop ?? options.stop;
    if (stop !== undefined) call.stop = stop;
    for (const field of CHAT_FEATURES) {
      const value = request[field] ?? options[field];
      if (value !== undefined) (call as unknown as Record<string, unknown>)[field] = value;
    }
    return call;
  });
}

/** The `estimateCost` activity's input for a batch. */
export function estimateInputOf(
  requests: readonly BatchRequest[],
  options: BatchOptions = {},
): EstimateCostInput {
  return {
    model: options.model ?? DEFAULT_MODEL,
    ...(options.templateOverhead ? { templateOverhead: options.templateOverhead } : {}),
    ...(options.imageTokenBound ? { imageTokenBound: options.imageTokenBound } : {}),
    ...(options.temporalActionPrice !== undefined
      ? { temporalActionPrice: options.temporalActionPrice }
      : {}),
    requests: resolveCalls(requests, options).map(
      ({ messages, model, maxTokens, tools, responseFormat }) => ({
        messages,
        model,
        maxTokens,
        ...(tools ? { tools } : {}),
        ...(responseFormat ? { responseFormat } : {}),
      }),
    ),
  };
}

/** The estimate as queries and results show it: the detailed one without its per-request arrays. */
export function publicEstimate(detailed: DetailedEstimate): BatchEstimate {
  return {
    totalRequests: detailed.totalRequests,
    totalInputTokens: detailed.totalInputTokens,
    totalOutputTokens: detailed.totalOutputTokens,
    inputCost: detailed.inputCost,
    outputCost: detailed.outputCost,
    totalCost: detailed.totalCost,
    currency: detailed.currency,
    model: detailed.model,
    maxCost: detailed.maxCost,
    ...(detailed.inputTokenCount ? { inputTokenCount: detailed.inputTokenCount } : {}),
    ...(detailed.toolTokens ? { toolTokens: detailed.toolTokens } : {}),
    ...(detailed.images ? { images: detailed.images, imageTokens: detailed.imageTokens ?? 0 } : {}),
    ...(detailed.temporalActions ? { temporalActions: detailed.temporalActions } : {}),
  };
}
