import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { BatchProgress, BatchResult } from '../../src';
import { startTestContext, type TestContext } from '../helpers/context';
import { waitFor } from '../helpers/wait';

const run = promisify(execFile);

/**
 * A whole batch driven by the official `temporal` CLI only: what a service in Go, Python or Java
 * sends is exactly this.
 */
describe('any Temporal client can drive a batch', () => {
  let ctx: TestContext;
  let temporal: (...args: string[]) => Promise<string>;

  beforeAll(async () => {
    ctx = await startTestContext({ latencyMs: 10 });
    const cli = process.env.TEST_TEMPORAL_CLI!;
    const address = process.env.TEST_TEMPORAL_ADDRESS!;
    temporal = async (...args) => (await run(cli, [...args, '--address', address])).stdout;
  });
  /** `temporal workflow start` of a batch, exactly as another SDK's service would send it. */
  const startBatch = (workflowId: string, input: unknown) =>
    temporal(
      'workflow',
      'start',
      '--type',
      'maritacaBatch',
      '--task-queue',
      ctx.taskQueue,
      '--workflow-id',
      workflowId,
      '--input',
      JSON.stringify(input),
    );

  afterAll(async () => {
    await ctx?.close();
  });

  test('start, query progress, signal approve, read the result', async () => {
    const workflowId = `temporal-cli-${Date.now()}`;
    const input = {
      requests: [
        { id: 'peru', messages: [{ role: 'user', content: 'Qual é a capital do Peru?' }] },
        { messages: [{ role: 'user', content: 'Qual é a capital da Bolívia?' }], maxTokens: 50 },
      ],
      options: { model: 'sabiazinho-4', maxConcurrency: 2 },
    };
    await startBatch(workflowId, input);
    const query = async (): Promise<BatchProgress> => {
      const out = await temporal(
        'workflow',
        'query',
        '--workflow-id',
        workflowId,
        '--name',
        'progress',
        '-o',
        'json',
      );
      return (JSON.parse(out) as { queryResult: BatchProgress[] }).queryResult[0]!;
    };
    const waiting = await waitFor(query, (p) => p.status === 'awaiting_approval', {
      what: 'awaiting_approval',
    });
    expect(waiting.estimate).toMatchObject({
      totalRequests: 2,
      totalOutputTokens: 1050,
      model: 'sabiazinho-4',
    });

    await temporal(
      'workflow',
      'signal',
      '--workflow-id',
      workflowId,
      '--name',
      'approve',
      '--input',
      JSON.stringify({ approvedBy: 'temporal-cli' }),
    );
    const out = await temporal('workflow', 'result', '--workflow-id', workflowId, '-o', 'json');
    const result = (JSON.parse(out) as { result: BatchResult }).result;
    expect(result.status).toBe('completed');
    expect(result.results.map((r) => r.id)).toEqual(['peru', '1']);
    expect(result.results.every((r) => r.ok)).toBe(true);
    const final = await query();
    expect(final.approval).toMatchObject({ approvedBy: 'temporal-cli', via: 'signal' });
  });

  test('a workflow started with bad input fails at once, naming the field', async () => {
    ctx.fake.reset();
    const workflowId = `temporal-cli-bad-${Date.now()}`;
    await startBatch(workflowId, { requests: [{ messages: [{ role: 'robot', content: 'x' }] }] });
    const failure = await temporal('workflow', 'result', '--workflow-id', workflowId, '-o', 'json').then(
      (stdout) => stdout,
      (err: { stdout?: string; stderr?: string }) => `${err.stdout ?? ''}${err.stderr ?? ''}`,
    );
    expect(failure).toContain('requests[0].messages[0].role');
    expect(ctx.fake.stats().totalRequests).toBe(0);
  });
});
