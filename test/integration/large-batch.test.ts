import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_HISTORY_EVENT_LIMIT, INLINE_RESULTS_MAX, toJsonlInputLines } from '../../src';
import { questions, startTestContext, type TestContext } from '../helpers/context';

describe('large batches: bounded history, outcomes off the history', () => {
  let ctx: TestContext;

  beforeAll(async () => {
    ctx = await startTestContext({ latencyMs: 0 });
  });
  afterAll(async () => {
    await ctx?.close();
  });

  /** Event counts of every run of a workflow id, oldest first. */
  async function runsOf(batchId: string): Promise<number[]> {
    const runIds: string[] = [];
    for await (const execution of ctx.temporal.workflow.list({ query: `WorkflowId = "${batchId}"` })) {
      runIds.push(execution.runId);
    }
    const sizes: number[] = [];
    for (const runId of runIds) {
      const history = await ctx.temporal.workflow.getHandle(batchId, runId).fetchHistory();
      sizes.push(history.events?.length ?? 0);
    }
    return sizes;
  }

  test('5,000 inline requests at concurrency 50: one result per id, in order, every run under the bound', async () => {
    const requests = questions(5000);
    const handle = await ctx.batches.start(requests, { maxConcurrency: 50, autoApproveBelow: 1000 });
    const result = await handle.result();

    expect(result.status).toBe('completed');
    expect(result.resultsRef).toBeDefined();
    // Runs of calls and continue-as-new never put more calls on Maritaca than the window.
    expect(ctx.fake.stats().peakConcurrency).toBeLessThanOrEqual(50);
    expect(result.runs).toBeGreaterThan(1);
    expect(result.results.map((r) => r.id)).toEqual(requests.map((r) => r.id));
    expect(result.results.every((r) => r.ok)).toBe(true);
    result.results.forEach((r, i) => {
      if (r.ok) expect(r.result.generations[0]!.text).toContain(requests[i]!.messages[0]!.content);
    });
    const stats = ctx.fake.stats();
    for (const r of requests) expect(stats.byRequestId[`${handle.batchId}/${r.id}`]).toBe(1);

    const sizes = await waitForRuns(handle.batchId, result.runs);
    expect(sizes).toHaveLength(result.runs);
    for (const size of sizes) expect(size).toBeLessThanOrEqual(DEFAULT_HISTORY_EVENT_LIMIT);
    const progress = await handle.progress();
    expect(progress).toMatchObject({ status: 'completed', completed: 5000, succeeded: 5000, total: 5000 });
  }, 300_000);

  /** Visibility may trail the last run by a moment; wait until every run is listed. */
  async function waitForRuns(batchId: string, runs: number): Promise<number[]> {
    for (let i = 0; i < 100; i++) {
      const sizes = await runsOf(batchId);
      if (sizes.length >= runs) return sizes;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return runsOf(batchId);
  }

  test('requests by reference: a JSONL source read page by page across runs', async () => {
    const count = INLINE_RESULTS_MAX + 300;
    const file = path.join(__dirname, '..', '..', 'test-artifacts', `source-${Date.now()}.jsonl`);
    const requests = Array.from({ length: count }, (_, i) => ({
      id: `src-${i}`,
      messages: [{ role: 'user' as const, content: `Pergunta da fonte ${i} com acentuação` }],
      maxTokens: 20,
    }));
    writeFileSync(file, toJsonlInputLines(requests, 'openai'));
    const handle = await ctx.batches.startFromFile(file, {
      maxConcurrency: 40,
      autoApproveBelow: 1000,
      historyEventLimit: 2000,
      // One activity per request, so 1,300 requests need several runs of 2,000 events.
      callsPerActivity: 1,
    });
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(result.runs).toBeGreaterThan(2);
    expect(result.results.map((r) => r.id)).toEqual(requests.map((r) => r.id));
    const stats = ctx.fake.stats();
    for (const r of requests) expect(stats.byRequestId[`${handle.batchId}/${r.id}`]).toBe(1);
    const input = await handle.workflowHandle.describe();
    expect(input.historyLength).toBeLessThanOrEqual(2000);
    for (const size of await waitForRuns(handle.batchId, result.runs)) expect(size).toBeLessThanOrEqual(2000);
  }, 300_000);
});
