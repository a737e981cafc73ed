export {
  BatchHandle,
  MaritacaBatchClient,
  validateBatchInput,
  type ConnectOptions,
  type MaritacaBatchClientOptions,
  type StartOptions,
} from './batch-client';
export * from './errors';
