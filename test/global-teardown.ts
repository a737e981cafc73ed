import type { TestWorkflowEnvironment } from '@temporalio/testing';

/** Stops the dev server started by the global setup. */
export default async function globalTeardown(): Promise<void> {
  await (globalThis as { __temporalTestEnv?: TestWorkflowEnvironment }).__temporalTestEnv?.teardown();
}
