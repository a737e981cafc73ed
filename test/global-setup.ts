import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode } from '@temporalio/worker';
import { BATCH_SEARCH_ATTRIBUTES } from '../src/shared/search-attributes';
import { EAGER_ACTIVITIES_ARGS, freePort } from '../src/testing/dev-server';
import { ensureMotoServer, startS3Server, type RunningS3Server } from '../src/testing/s3-server';
import { ensureTemporalCli } from '../src/testing/temporal-cli';

/**
 * Starts one real Temporal dev server and one S3 test server for the whole run and bundles the
 * workflows once; test files reach them through environment variables (jest workers inherit them).
 */
export default async function globalSetup(): Promise<void> {
  const cli = await ensureTemporalCli((line) => console.log(line));
  const uiPort = await freePort();
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: cli },
      ip: '127.0.0.1',
      ui: true,
      uiPort,
      searchAttributes: BATCH_SEARCH_ATTRIBUTES.map(({ key }) => key),
      extraArgs: EAGER_ACTIVITIES_ARGS,
    },
  });
  (globalThis as { __temporalTestEnv?: TestWorkflowEnvironment }).__temporalTestEnv = env;
  process.env.TEST_TEMPORAL_ADDRESS = env.address;
  process.env.TEST_TEMPORAL_CLI = cli;
  process.env.TEST_TEMPORAL_UI = `http://127.0.0.1:${uiPort}`;

  // One S3 server for every test file: tests keep apart by using their own buckets.
  const motoServer = await ensureMotoServer((line) => console.log(line));
  const s3 = await startS3Server({ executable: motoServer });
  (globalThis as { __s3TestServer?: RunningS3Server }).__s3TestServer = s3;
  process.env.TEST_S3_ENDPOINT = s3.endpoint;
  // The S3 test server takes any credentials; the AWS SDK's default chain still wants some.
  process.env.AWS_ACCESS_KEY_ID ??= 'test';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

  const artifacts = path.join(__dirname, '..', 'test-artifacts');
  mkdirSync(artifacts, { recursive: true });
  const bundle = await bundleWorkflowCode({
    workflowsPath: require.resolve('../src/workflows'),
    logger: { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} },
  });
  const bundlePath = path.join(artifacts, 'workflow-bundle.js');
  writeFileSync(bundlePath, bundle.code);
  process.env.TEST_WORKFLOW_BUNDLE = bundlePath;
  // Large batches' outcomes go here, out of the working tree.
  process.env.MARITACA_RESULTS_DIR = path.join(artifacts, 'results');
}
