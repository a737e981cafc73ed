/**
 * temporal-maritaca-batch: durable, budget-approved batches of Maritaca AI chat requests on
 * Temporal. This entry point is for worker and client code; workflow code imports
 * `temporal-maritaca-batch/workflows`.
 */
export * from './shared';
export * from './client';
export {
  MaritacaBatchPlugin,
  configFromEnv,
  createWorkerLogger,
  describeRetryableFailure,
  keyLimitsFromEnv,
  runWorker,
  workflowsPath,
} from './worker';
export type {
  EnvironmentConfig,
  MaritacaBatchPluginOptions,
  RetryableFailure,
  RunWorkerOptions,
  WorkerLoggerOptions,
} from './worker';
export {
  createActivities,
  createKeyLeaseActivity,
  estimateBatchCost,
  keyLimiterWorkflowId,
  estimateMessageTokens,
  estimateTextTokens,
  retryAfterMs,
} from './activities';
export type {
  ActivityDependencies,
  MaritacaConnectionOptions,
  PostProgressInput,
  ProgressEvent,
  ProgressListener,
} from './activities';
export {
  collectOutcomes,
  countJsonlRequests,
  createBatchStore,
  createFileObjectStorage,
  createS3ObjectStorage,
  defaultStoreUrl,
  storeFromEnv,
  storeFromUrl,
  StoreAccessError,
} from './store';
export type {
  BatchStore,
  BatchStoreOptions,
  ObjectStorage,
  S3ObjectStorageOptions,
  StoreFromUrlOptions,
} from './store';
export { loadPriceTable, PRICES_FILE_ENV, type LoadPriceTableOptions } from './pricing';
export * from './codec';
