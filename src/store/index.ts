/**
 * The batch store: JSONL batch files, and where batches keep their requests and outcomes (an S3
 * bucket or a local folder). Used by both the activities and the client; imports only `shared`
 * (and the codec's line sealing).
 */
export {
  collectOutcomes,
  countJsonlRequests,
  createBatchStore,
  sourceUrl,
  type BatchStore,
  type BatchStoreOptions,
  type OutcomeLog,
} from './batch-store';
export { defaultStoreUrl, storeFromEnv, storeFromUrl, type StoreFromUrlOptions } from './config';
export { createFileObjectStorage } from './file-objects';
export { StoreAccessError, type ObjectAppender, type ObjectStorage } from './object-storage';
export { createS3ObjectStorage, parseS3Url, type S3ObjectStorageOptions } from './s3-objects';
export * from './jsonl';
export { MaritacaBatchError } from './errors/maritaca-batch-error';
export { InvalidBatchFileError, type BatchFileProblem } from './errors/invalid-batch-file-error';
