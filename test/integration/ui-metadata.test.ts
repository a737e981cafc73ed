import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import {
  BATCH_STATUS_KEY,
  MaritacaBatchClient,
  MaritacaBatchPlugin,
  REQUESTS_KEY,
  type BatchHandle,
} from '../../src';
import { questions, startTestContext, TEST_API_KEY, type TestContext } from '../helpers/context';
import { waitFor } from '../helpers/wait';

const run = promisify(execFile);

/** What `__temporal_workflow_metadata` answers: the UI's signal, update and query dialogs read it. */
interface WorkflowMetadata {
  definition: {
    type: string;
    signalDefinitions: { name: string; description?: string }[];
    queryDefinitions: { name: string; description?: string }[];
    updateDefinitions: { name: string; description?: string }[];
  };
  currentDetails?: string;
}

/** Requests Maritaca refuses with HTTP 400 (the fake server obeys the marker). */
function refused(count: number): { id: string; messages: { role: 'user'; content: string }[] }[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `r${i}`,
    messages: [{ role: 'user' as const, content: `Pergunta recusada ${i} [[fake-status:400]]` }],
  }));
}

const metadataOf = (handle: BatchHandle): Promise<WorkflowMetadata> =>
  handle.workflowHandle.query<WorkflowMetadata>('__temporal_workflow_metadata');
const awaitingApproval = (handle: BatchHandle) =>
  waitFor(
    () => handle.progress(),
    (p) => p.status === 'awaiting_approval',
  );

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
    // Each call's summary names its request (or a run's, its first and last); the event history
    // reads as a list of requests.
    const decoded = [...summaries.matchAll(/"data":"([A-Za-z0-9+/=]+)"/g)].map((m) =>
      Buffer.from(m[1]!, 'base64').toString(),
    );
    const single = decoded.filter((d) => d.startsWith('"request ')).length;
    const inRuns = decoded
      .filter((d) => d.startsWith('"requests '))
      .reduce((n, d) => n + Number(/\((\d+)\)"$/.exec(d)![1]), 0);
    expect(single + inRuns).toBe(5);
  });

  test('every signal, update and query says what it does and what it takes', async () => {
    const handle = await ctx.batches.start(questions(2));
    await awaitingApproval(handle);
    const { definition } = await metadataOf(handle);
    expect(definition.type).toBe('maritacaBatch');
    expect(definition.signalDefinitions.map((d) => d.name).sort()).toEqual([
      'approve',
      'pause',
      'reject',
      'resume',
    ]);
    expect(definition.updateDefinitions.map((d) => d.name).sort()).toEqual([
      'approveBudget',
      'setConcurrency',
    ]);
    expect(definition.queryDefinitions.map((d) => d.name)).toEqual(
      expect.arrayContaining(['completions', 'estimate', 'progress']),
    );
    const all = [
      ...definition.signalDefinitions,
      ...definition.updateDefinitions,
      ...definition.queryDefinitions,
    ];
    const undescribed = all.filter((d) => !d.description?.trim()).map((d) => d.name);
    expect(undescribed).toEqual([]);
    const approve = definition.signalDefinitions.find((d) => d.name === 'approve')!.description!;
    expect(approve).toContain('"budget"');
    expect(approve).toContain('"approvedBy"');
    expect(approve).toContain('An empty payload approves the estimate.');
    // The CLI shows them too.
    const text = await temporal('workflow', 'metadata', '--workflow-id', handle.batchId);
    expect(text).toContain('An empty payload approves the estimate.');
    await handle.reject('test over');
    await handle.result();
  });

  test('an approve signal with no payload, null, {} or a blank string approves the estimate', async () => {
    const sends: [string, (handle: BatchHandle) => Promise<unknown>][] = [
      // What `temporal workflow signal --name approve` and the UI's dialog with no data send.
      [
        'no payload (CLI)',
        (h) => temporal('workflow', 'signal', '--workflow-id', h.batchId, '--name', 'approve'),
      ],
      ['no payload (client)', (h) => h.workflowHandle.signal('approve')],
      ['null', (h) => h.workflowHandle.signal('approve', null)],
      ['{}', (h) => h.workflowHandle.signal('approve', {})],
      ['a blank string', (h) => h.workflowHandle.signal('approve', '  ')],
    ];
    const outcomes = await Promise.all(
      sends.map(async ([how, send]) => {
        // An ignored signal then ends the batch as expired instead of hanging the test.
        const handle = await ctx.batches.start(questions(2), { approvalTimeout: '30s' });
        const { estimate } = await awaitingApproval(handle);
        await send(handle);
        const result = await handle.result();
        return { how, status: result.status, approvals: result.approvals, estimate: estimate!.totalCost };
      }),
    );
    for (const { how, status, approvals, estimate } of outcomes) {
      expect({ how, status }).toEqual({ how, status: 'completed' });
      expect(approvals).toHaveLength(1);
      expect({ how, budget: approvals[0]!.budget, via: approvals[0]!.via }).toEqual({
        how,
        budget: estimate,
        via: 'signal',
      });
      expect(approvals[0]!.approvedBy).toBeUndefined();
    }
  });

  test('a closed batch keeps current details that say how it ended, failures counted', async () => {
    // Every request refused, recorded per request: the batch completes, and must not look fine.
    const allFailed = await ctx.batches.start(refused(8), { returnExceptions: true, autoApproveBelow: 10 });
    const result = await allFailed.result();
    expect(result.status).toBe('completed');
    expect(result.counts).toMatchObject({ total: 8, succeeded: 0, failed: 8 });
    const details = (await metadataOf(allFailed)).currentDetails!;
    expect(details).toContain('**Status:** completed');
    expect(details).toMatch(
      /\*\*All 8 requests failed\*\* \(last error: MaritacaBadRequest \(HTTP 400\): .+\)/,
    );
    expect(details).toContain('8/8 (100%) · 0 succeeded · 8 failed');
    expect(details).toMatch(/spent R\\\$ 0\.000000 · approved R\\\$ 10\.00/);
    const cliText = await temporal('workflow', 'metadata', '--workflow-id', allFailed.batchId);
    expect(cliText).toContain('**All 8 requests failed**');

    // Some refused, some answered.
    const someFailed = await ctx.batches.start([...questions(3), ...refused(2)], {
      returnExceptions: true,
      autoApproveBelow: 10,
    });
    await someFailed.result();
    const mixed = (await metadataOf(someFailed)).currentDetails!;
    expect(mixed).toContain('**2 of 5 requests failed** (last error: MaritacaBadRequest (HTTP 400)');
    expect(mixed).toContain('5/5 (100%) · 3 succeeded · 2 failed');

    // A failure without returnExceptions fails the batch; its details name the request.
    const failed = await ctx.batches.start(refused(3), { autoApproveBelow: 10, maxConcurrency: 1 });
    await expect(failed.result()).rejects.toThrow(/r0/);
    const failedDetails = (await metadataOf(failed)).currentDetails!;
    expect(failedDetails).toContain('**Status:** failed');
    expect(failedDetails).toMatch(
      /\*\*Failed:\*\* Request "r0" \(index 0\) failed after 1 attempt\(s\): MaritacaBadRequest/,
    );
    expect(failedDetails).toMatch(/· 1 failed · 2 never ran/);
  });

  test('rejected, expired, cancelled and budget-exhausted batches say so in their current details', async () => {
    const rejected = await ctx.batches.start(questions(3));
    await awaitingApproval(rejected);
    await rejected.reject('fora do orçamento');
    expect((await rejected.result()).status).toBe('rejected');

    const expired = await ctx.batches.start(questions(3), { approvalTimeout: '1s' });
    expect((await expired.result()).status).toBe('expired');

    const cancelled = await ctx.batches.start(questions(3));
    await awaitingApproval(cancelled);
    await cancelled.cancel();
    expect((await cancelled.result()).status).toBe('cancelled');

    // A budget smaller than any one call's worst case: nothing can start, then the person gives up.
    const exhausted = await ctx.batches.start(questions(4));
    const { estimate } = await awaitingApproval(exhausted);
    await exhausted.approveBudget(estimate!.maxCost / 100);
    await waitFor(
      () => exhausted.progress(),
      (p) => p.status === 'awaiting_budget',
    );
    await exhausted.reject('enough');
    expect((await exhausted.result()).status).toBe('budget_exhausted');

    const detailsOf = async (handle: BatchHandle) => (await metadataOf(handle)).currentDetails!;
    const rejectedDetails = await detailsOf(rejected);
    expect(rejectedDetails).toContain('**Status:** rejected');
    expect(rejectedDetails).toContain('**Rejected**: fora do orçamento; nothing was sent to Maritaca');
    expect(rejectedDetails).toContain('0 succeeded · 0 failed · 3 never ran');
    const expiredDetails = await detailsOf(expired);
    expect(expiredDetails).toContain('**Status:** expired');
    expect(expiredDetails).toContain('**Expired:** no approval arrived within `approvalTimeout`');
    const cancelledDetails = await detailsOf(cancelled);
    expect(cancelledDetails).toContain('**Status:** cancelled');
    expect(cancelledDetails).toContain('**Cancelled:** 3 request(s) never ran');
    const exhaustedDetails = await detailsOf(exhausted);
    expect(exhaustedDetails).toContain('**Status:** budget_exhausted');
    expect(exhaustedDetails).toContain('**Budget exhausted:** 4 request(s) never ran');
    for (const details of [rejectedDetails, expiredDetails, cancelledDetails, exhaustedDetails]) {
      // Nothing left to wait for once the batch has ended.
      expect(details).not.toContain('Waiting for');
    }
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
