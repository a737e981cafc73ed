import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { RunningS3Server } from '../src/testing/s3-server';

/** Stops the dev server and the S3 server started by the global setup. */
export default async function globalTeardown(): Promise<void> {
  await Promise.all([
    (globalThis as { __temporalTestEnv?: TestWorkflowEnvironment }).__temporalTestEnv?.teardown(),
    (globalThis as { __s3TestServer?: RunningS3Server }).__s3TestServer?.close(),
  ]);
}
