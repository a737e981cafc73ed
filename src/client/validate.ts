import { batchInputSchema, validateWith, type BatchInput } from '../shared';
import { InvalidBatchInputError } from './errors';

/** Validates a whole batch input, throwing {@link InvalidBatchInputError} that names each bad field. */
export function validateBatchInput(input: unknown): BatchInput {
  const result = validateWith(batchInputSchema, input);
  if (!result.ok) throw new InvalidBatchInputError(result.issues);
  return result.value;
}
