/**
 * temporal-maritaca-batch: durable, budget-approved batches of Maritaca AI chat requests on
 * Temporal. This entry point is for worker and client code; workflow code imports
 * `temporal-maritaca-batch/workflows`.
 */
export * from './shared';
export * from './client';
export { MaritacaBatchPlugin, configFromEnv, runWorker, workflowsPath } from './worker';
export type { EnvironmentConfig, MaritacaBatchPluginOptions, RunWorkerOptions } from './worker';
export {
  createActivities,
  estimateBatchCost,
  estimateMessageTokens,
  estimateTextTokens,
  retryAfterMs,
  createJsonlFileStore,
  countJsonlRequests,
  defaultResultsDir,
  readResultsFile,
} from './activities';
export type {
  ActivityDependencies,
  MaritacaConnectionOptions,
  PostProgressInput,
  ProgressEvent,
  ProgressListener,
  BatchStore,
  JsonlFileStoreOptions,
} from './activities';
export * from './codec';
