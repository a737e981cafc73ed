export {
  BatchHandle,
  MaritacaBatchClient,
  type ConnectOptions,
  type MaritacaBatchClientOptions,
  type StartOptions,
} from './batch-client';
export * from './errors';
export {
  estimateSeedInputs,
  parsedOf,
  type SeedBatchOptions,
  type SeedEstimateOptions,
  type SeedInput,
  type StructuredOutputOptions,
} from './seed-helpers';
export type {
  LangChainImageBlock,
  LangChainMessage,
  LangChainMessageFields,
  LangChainTool,
  LangChainToolCall,
  MessageTuple,
  SeedContent,
  SeedMessage,
  SeedMessageType,
  SeedTool,
  SeedToolChoice,
  SerializedLangChainMessage,
} from './langchain-messages';
export { validateBatchInput, type ValidateBatchInputOptions } from './validate';
export * from '../store/jsonl';
export { followUpId, outcomesOf, type FollowUpMemo } from './follow-up';
