import { estimateMessageTokens } from '../activities/token-estimate';
import {
  DEFAULT_MAX_OUTPUT_TOKENS,
  DEFAULT_MODEL,
  batchInputSchema,
  knownModelsOf,
  unknownModelMessage,
  validateWith,
  type BatchInput,
  type InputIssue,
  type PriceTable,
} from '../shared';
import { loadPriceTable } from '../pricing';
import { chatFeatureIssues, optionFeatureIssues } from './chat-features';
import { InvalidBatchInputError } from './errors';

/**
 * Largest inline input accepted: Temporal refuses payloads over 2 MB, and the history must also
 * hold the rest of the batch.
 */
export const INLINE_INPUT_MAX_BYTES = 1536 * 1024;

/** Options of {@link validateBatchInput}. */
export interface ValidateBatchInputOptions {
  /** False for requests that stay in a file: the workflow input then carries only a reference. */
  inline?: boolean;
  /** The models that exist and their context windows (default {@link loadPriceTable}: built-in or `MARITACA_PRICES_FILE`). */
  prices?: PriceTable;
}

/**
 * Validates a whole batch input, throwing {@link InvalidBatchInputError} that names each bad
 * field. Beyond the schema it refuses a model the price table does not know (listing those it
 * does), a request whose prompt and `max_tokens` cannot fit its model's context window, and
 * (unless `inline` is false) a batch too large for a workflow input.
 */
export function validateBatchInput(input: unknown, options: ValidateBatchInputOptions = {}): BatchInput {
  const { inline = true } = options;
  const result = validateWith(batchInputSchema, input);
  if (!result.ok) throw new InvalidBatchInputError(result.issues);
  const value = result.value;
  const prices = options.prices ?? loadPriceTable();
  const isKnown = (model: string): boolean => Object.hasOwn(prices.models, model);
  const issues: InputIssue[] = [];
  // Checked here, not in the schema the workflow also runs, so a model a prices file adds is
  // accepted wherever that file is in use.
  if (value.options?.model !== undefined && !isKnown(value.options.model)) {
    issues.push({ path: 'options.model', message: unknownModelMessage(knownModelsOf(prices)) });
  }
  if (value.options) issues.push(...optionFeatureIssues(value.options));
  (value.requests ?? []).forEach((request, index) => {
    for (const issue of chatFeatureIssues(request, value.options)) {
      issues.push({ path: `requests[${index}].${issue.path}`, message: issue.message });
    }
    if (request.model !== undefined && !isKnown(request.model)) {
      issues.push({ path: `requests[${index}].model`, message: unknownModelMessage(knownModelsOf(prices)) });
      return;
    }
    const model = request.model ?? value.options?.model ?? DEFAULT_MODEL;
    if (!isKnown(model)) return;
    const window = prices.models[model]!.contextWindow;
    const maxTokens = request.maxTokens ?? value.options?.maxOutputTokens ?? DEFAULT_MAX_OUTPUT_TOKENS;
    const promptTokens = estimateMessageTokens(request.messages);
    if (promptTokens + maxTokens > window) {
      issues.push({
        path: `requests[${index}].messages`,
        message:
          `about ${promptTokens} prompt tokens plus max_tokens ${maxTokens} exceed ${model}'s context window of ` +
          `${window} tokens: shorten or split the messages, or lower max_tokens`,
      });
    }
  });
  if (issues.length > 0) throw new InvalidBatchInputError(issues);
  if (value.requests && inline) {
    const bytes = Buffer.byteLength(JSON.stringify(value), 'utf8');
    if (bytes > INLINE_INPUT_MAX_BYTES) {
      throw new InvalidBatchInputError([
        {
          path: 'requests',
          message:
            `the batch is ${(bytes / 1024 / 1024).toFixed(1)} MB, more than a workflow input can carry ` +
            `(${INLINE_INPUT_MAX_BYTES / 1024 / 1024} MB here, 2 MB in Temporal): write the requests to a JSONL ` +
            'file and start it by reference with startFromFile (CLI: submit --by-reference)',
        },
      ]);
    }
  }
  return value;
}
