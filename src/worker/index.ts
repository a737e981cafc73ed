export { MaritacaBatchPlugin, workflowsPath, type MaritacaBatchPluginOptions } from './plugin';
export { configFromEnv, keyLimitsFromEnv, type EnvironmentConfig } from './config';
export { runWorker, type RunWorkerOptions } from './run-worker';
export {
  createWorkerLogger,
  describeRetryableFailure,
  type RetryableFailure,
  type WorkerLoggerOptions,
} from './logging';
