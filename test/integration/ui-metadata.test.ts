import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { BATCH_STATUS_KEY, MaritacaBatchClient, MaritacaBatchPlugin, REQUESTS_KEY } from '../../src';
import { questions, startTestContext, TEST_API_KEY, type TestContext } from '../helpers/context';
import { waitFor } from '../helpers/wait';

const run = promisify(execFile);

describe('what the Temporal UI and CLI show of a batch', () => {
  let ctx: TestContext;
  let temporal: (...args: string[]) => Promise<string>;

  beforeAll(async () => {
    ctx = await startTestContext({ latencyMs: 20 });
    temporal = async (...args) =>
      (await run(process.env.TEST_TEMPORAL_CLI!, [...args, '--address', process.env.TEST_TEMPORAL_ADDRESS!]))
        .stdout;
  });
  afterAll(async () => {
    await ctx?.close();
  });

  test('describe shows the current details, summaries and search attributes; list filters by status', async () => {
    const handle = await ctx.batches.start(questions(5), { model: 'sabiazinho-4', maxConcurrency: 2 });
    await waitFor(
      () => handle.progress(),
      (p) => p.status === 'awaiting_approval',
    );

    await waitFor(
      () => handle.workflowHandle.describe(),
      (d) => d.typedSearchAttributes.get(BATCH_STATUS_KEY) === 'awaiting_approval',
      { what: 'the status search attribute' },
    );
    const described = await temporal('workflow', 'describe', '--workflow-id', handle.batchId);
    expect(described).toContain('MaritacaBatchStatus');
    expect(described).toContain('awaiting_approval');
    expect(described).toContain('Maritaca batch: 5 request(s), model sabiazinho-4');
    expect(described).toMatch(/StaticDetails\s+"?\*\*Requests:\*\* 5/);
    // The CLI shows current details through `workflow metadata` (describe has the rest).
    const metadataText = await temporal('workflow', 'metadata', '--workflow-id', handle.batchId);
    expect(metadataText).toContain('**Status:** awaiting_approval');

    const metadata = await handle.workflowHandle.query<{ currentDetails?: string }>(
      '__temporal_workflow_metadata',
    );
    expect(metadata.currentDetails).toContain('**Status:** awaiting_approval');
    expect(metadata.currentDetails).toContain('0/5 (0%)');
    expect(metadata.currentDetails).toMatch(/estimate R\\\$ [\d.]+/);
    expect(metadata.currentDetails).toContain('**Waiting for:** a budget approval');

    const listed = await waitFor(
      () =>
        temporal(
          'workflow',
          'list',
          '--query',
          `MaritacaBatchStatus="awaiting_approval" AND WorkflowId="${handle.batchId}"`,
          '-o',
          'json',
        ),
      (out) => out.includes(handle.batchId),
      { what: 'the list filter to find the batch' },
    );
    expect(listed).toContain(handle.batchId);

    await handle.approve();
    await handle.result();
    const done = await handle.workflowHandle.describe();
    expect(done.typedSearchAttributes.get(BATCH_STATUS_KEY)).toBe('completed');
    expect(done.typedSearchAttributes.get(REQUESTS_KEY)).toBe(5);
    const details = await handle.workflowHandle.query<{ currentDetails?: string }>(
      '__temporal_workflow_metadata',
    );
    expect(details.currentDetails).toContain('**Status:** completed');
    expect(details.currentDetails).toContain('5/5 (100%)');
    expect(details.currentDetails).toMatch(/spent R\\\$ 0\.0\d+ · approved R\\\$/);

    const history = await handle.workflowHandle.fetchHistory();
    const summaries = JSON.stringify(history);
    // Each call's summary names its request; the event history reads as a list of requests.
    expect((summaries.match(/InJlcXVlc3Qg/g) ?? []).length).toBe(5); // base64 of '"request '
  });

  test('a worker in a namespace without the search attributes says so and keeps working', async () => {
    const namespace = `no-search-attributes-${Date.now()}`;
    // Namespaces created after the server started lack the search attributes it registered.
    await temporal('operator', 'namespace', 'create', '--namespace', namespace);
    await waitFor(
      () => temporal('operator', 'namespace', 'describe', '--namespace', namespace).catch(() => ''),
      (out) => out.includes(namespace),
      { what: 'the namespace to exist' },
    );
    const logs: string[] = [];
    const nativeConnection = await NativeConnection.connect({ address: process.env.TEST_TEMPORAL_ADDRESS! });
    const worker = await Worker.create({
      connection: nativeConnection,
      namespace,
      taskQueue: 'no-sa',
      plugins: [
        new MaritacaBatchPlugin({
          apiKey: TEST_API_KEY,
          baseURL: ctx.fake.url,
          workflowBundle: { codePath: process.env.TEST_WORKFLOW_BUNDLE! },
        }),
      ],
    });
    const { Runtime } = await import('@temporalio/worker');
    const logger = Runtime.instance().logger;
    const originalWarn = logger.warn.bind(logger);
    logger.warn = (message: string, meta?: Record<string, unknown>) => {
      logs.push(message);
      originalWarn(message, meta);
    };
    const running = worker.run();
    const connection = await Connection.connect({ address: process.env.TEST_TEMPORAL_ADDRESS! });
    try {
      const batches = new MaritacaBatchClient({
        client: new Client({ connection, namespace }),
        taskQueue: 'no-sa',
      });
      const handle = await batches.start(questions(3), { autoApproveBelow: 10 });
      const result = await handle.result();
      expect(result.status).toBe('completed');
      expect(logs.join('\n')).toMatch(
        /Search attributes MaritacaBatchStatus, MaritacaEstimatedCost, MaritacaActualCost, MaritacaRequests are not registered in namespace "no-search-attributes-\d+".*temporal operator search-attribute create --namespace no-search-attributes-\d+/,
      );
    } finally {
      logger.warn = originalWarn;
      worker.shutdown();
      await running;
      await nativeConnection.close();
      await connection.close();
    }
  });
});
