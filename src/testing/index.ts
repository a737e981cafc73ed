/** Test and demo helpers: the fake Maritaca server, the Temporal dev-server bootstrap and an S3 test server. */
export * from './fake-maritaca';
export * from './temporal-cli';
export * from './dev-server';
export {
  MOTO_VERSION,
  findMotoServer,
  ensureMotoServer,
  startS3Server,
  createTestS3Client,
  createTestBucket,
  type S3ServerOptions,
  type RunningS3Server,
} from './s3-server';
