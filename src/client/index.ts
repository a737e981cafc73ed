export {
  BatchHandle,
  MaritacaBatchClient,
  type ConnectOptions,
  type MaritacaBatchClientOptions,
  type StartOptions,
} from './batch-client';
export * from './errors';
export { estimateSeedInputs, type SeedBatchOptions, type SeedInput } from './seed-helpers';
export { validateBatchInput, type ValidateBatchInputOptions } from './validate';
export * from '../store/jsonl';
export { followUpId, outcomesOf, type FollowUpMemo } from './follow-up';
