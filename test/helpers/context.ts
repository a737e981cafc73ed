import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, Worker, DefaultLogger } from '@temporalio/worker';
import { MaritacaBatchClient } from '../../src/client';
import { MaritacaBatchPlugin, type MaritacaBatchPluginOptions } from '../../src/worker';
import {
  startFakeMaritaca,
  type FakeMaritacaOptions,
  type FakeMaritacaServer,
} from '../../src/testing/fake-maritaca';

/** API key the tests give the fake server and the worker. */
export const TEST_API_KEY = 'sk-test-SECRET-do-not-leak-0123456789';

let runtimeInstalled = false;

/** Everything a test needs: a fake Maritaca, a worker on its own task queue, and clients. */
export interface TestContext {
  fake: FakeMaritacaServer;
  batches: MaritacaBatchClient;
  temporal: Client;
  taskQueue: string;
  /** Log lines the worker emitted (for secret checks). */
  logs: string[];
  close(): Promise<void>;
}

/** Keeps an error's message, stack and cause in a logged JSON line (plain JSON drops them). */
function withErrors(_key: string, value: unknown): unknown {
  if (!(value instanceof Error)) return value;
  return { ...value, name: value.name, message: value.message, stack: value.stack, cause: value.cause };
}

/** Starts a fake Maritaca server and a worker bound to it, against the suite's dev server. */
export async function startTestContext(
  fakeOptions: FakeMaritacaOptions = {},
  pluginOptions: Partial<MaritacaBatchPluginOptions> = {},
): Promise<TestContext> {
  const address = process.env.TEST_TEMPORAL_ADDRESS;
  const bundlePath = process.env.TEST_WORKFLOW_BUNDLE;
  if (!address || !bundlePath) throw new Error('The jest global setup did not run');
  const logs: string[] = [];
  if (!runtimeInstalled) {
    runtimeInstalled = true;
    Runtime.install({
      logger: new DefaultLogger('INFO', (entry) => {
        logs.push(`${entry.level} ${entry.message} ${JSON.stringify(entry.meta ?? {}, withErrors)}`);
      }),
    });
  }
  const fake = await startFakeMaritaca({ apiKey: TEST_API_KEY, ...fakeOptions });
  const taskQueue = `test-${randomUUID()}`;
  const nativeConnection = await NativeConnection.connect({ address });
  const worker = await Worker.create({
    connection: nativeConnection,
    taskQueue,
    plugins: [
      new MaritacaBatchPlugin({
        apiKey: TEST_API_KEY,
        baseURL: fake.url,
        requestTimeoutMs: 5_000,
        workflowBundle: { codePath: bundlePath },
        ...pluginOptions,
      }),
    ],
  });
  const running = worker.run();
  const connection = await Connection.connect({ address });
  const temporal = new Client({ connection });
  const batches = new MaritacaBatchClient({ client: temporal, taskQueue });
  return {
    fake,
    batches,
    temporal,
    taskQueue,
    logs,
    async close() {
      worker.shutdown();
      await running;
      await nativeConnection.close();
      await connection.close();
      await fake.close();
    },
  };
}

/** Short Portuguese questions with distinct text, so answers can be matched to requests. */
export function questions(count: number): { id: string; messages: { role: 'user'; content: string }[] }[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `q${i}`,
    messages: [{ role: 'user' as const, content: `Pergunta número ${i}: quanto é ${i} + ${i}?` }],
  }));
}
