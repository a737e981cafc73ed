import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readOpenAIBatchOutput } from '../../src';
import { startTestContext, type TestContext } from '../helpers/context';
import { CLI, spawnCli } from '../helpers/processes';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'openai-batch-200.jsonl');

describe('the maritaca-batch CLI driving batches', () => {
  let ctx: TestContext;
  let flags: string[];
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'cli-batch-'));

  /** Runs the CLI to completion with the test server's address and task queue. */
  async function cli(...args: string[]): Promise<{ code: number | null; out: string }> {
    const run = spawnCli([...flags, ...args]);
    const code = await run.exited;
    return { code, out: run.output() };
  }

  beforeAll(async () => {
    ctx = await startTestContext({ latencyMs: 10 });
    flags = ['--address', process.env.TEST_TEMPORAL_ADDRESS!, '--task-queue', ctx.taskQueue];
  });
  afterAll(async () => {
    await ctx?.close();
  });

  test('a 200-request OpenAI batch file goes through estimate, submit, approve, status --watch and results', async () => {
    const estimate = await cli('estimate', FIXTURE, '--json');
    expect(estimate.code).toBe(0);
    const estimated = JSON.parse(estimate.out) as {
      totalRequests: number;
      totalCost: number;
      currency: string;
    };
    expect(estimated).toMatchObject({ totalRequests: 200, currency: 'BRL' });
    expect(ctx.fake.stats().totalRequests).toBe(0);
    // A learned template overhead (0 + 6.5 per message) instead of the conservative 16 + 16.
    const learned = await cli('estimate', FIXTURE, '--json', '--template-overhead', '0+6.5');
    const tight = JSON.parse(learned.out) as { totalCost: number; totalInputTokens: number };
    expect(tight.totalCost).toBeLessThan(estimated.totalCost);
    expect((await cli('estimate', FIXTURE, '--template-overhead', '13')).code).toBe(2);

    const batchId = `cli-openai-200-${Date.now()}`;
    const submit = await cli('submit', FIXTURE, '--id', batchId, '--concurrency', '20', '--json');
    expect(submit.code).toBe(0);
    const submitted = JSON.parse(submit.out) as {
      batchId: string;
      status: string;
      estimate: { totalCost: number };
    };
    expect(submitted).toMatchObject({ batchId, status: 'awaiting_approval' });
    expect(submitted.estimate.totalCost).toBeCloseTo(estimated.totalCost, 9);

    const approve = await cli('approve', batchId, '--budget', '5', '--by', 'cli-test');
    expect(approve.code).toBe(0);
    expect(approve.out).toContain(`Approved batch ${batchId}`);

    const watch = await cli('status', batchId, '--watch', '--interval', '100');
    expect(watch.code).toBe(0);
    const lines = watch.out.trim().split('\n');
    expect(lines.at(-1)).toMatch(
      /completed, 200\/200 done, 0 in flight, 0 failed, spent R\$ [\d.]+, approved R\$ 5/,
    );
    expect(lines.length).toBeGreaterThan(1);

    const outFile = path.join(tmp, 'out.jsonl');
    const results = await cli('results', batchId, '-o', outFile);
    expect(results.code).toBe(0);
    expect(results.out).toContain('200 result(s), 0 failed');
    const output = readOpenAIBatchOutput(readFileSync(outFile, 'utf8'));
    const ids = output.map((line) => line.custom_id);
    const expected = Array.from({ length: 200 }, (_, i) => `req-${String(i + 1).padStart(3, '0')}`);
    expect(ids).toEqual(expected);
    expect(new Set(ids).size).toBe(200);
    for (const line of output) expect(line.response?.status_code).toBe(200);

    // What the orchestration cost: at most about one action per request (fast calls share activities).
    const actions = await cli('actions', batchId, '--json');
    expect(actions.code).toBe(0);
    const used = JSON.parse(actions.out) as {
      total: number;
      byType: Record<string, number>;
      usdPerMillion: number;
    };
    expect(used.byType.activity_scheduled).toBeGreaterThan(0);
    expect(used.byType.activity_scheduled).toBeLessThanOrEqual(200 + 5);
    expect(used.total / 200).toBeLessThan(1.3);
    expect(used.usdPerMillion).toBe(50);

    // On a terminal the same command draws a bar with counts, rate, ETA and spend against the budget.
    const onTerminal = await new Promise<string>((resolve, reject) => {
      const command = [process.execPath, CLI, ...flags, 'status', batchId, '--watch']
        .map((a) => `'${a}'`)
        .join(' ');
      execFile('script', ['-qec', command, '/dev/null'], (err, stdout) =>
        err ? reject(err) : resolve(stdout),
      );
    });
    expect(onTerminal).toMatch(
      /completed\s+\S+ 100% \| 200\/200 done, 0 in flight, 0 failed \| \d+\/min \| ETA \S+ \| R\$ [\d.]+ of R\$ 5\.00/,
    );

    const list = await cli('list', '--status', 'completed', '--json');
    expect(list.code).toBe(0);
    const rows = list.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { batchId: string; status: string });
    expect(rows).toContainEqual(expect.objectContaining({ batchId, status: 'completed' }));

    const again = await cli('approve', batchId);
    expect(again.code).toBe(1);
    expect(again.out).toContain(`batch ${batchId} is not waiting for approval (status: completed)`);
  });

  test('reject and cancel end waiting batches, and status --json is one stable object', async () => {
    const small = path.join(tmp, 'small.jsonl');
    writeFileSync(small, readFileSync(FIXTURE, 'utf8').split('\n').slice(0, 3).join('\n'));
    const rejectId = `cli-reject-${Date.now()}`;
    expect((await cli('submit', small, '--id', rejectId)).code).toBe(0);
    const rejected = await cli('reject', rejectId, '--reason', 'not today');
    expect(rejected.code).toBe(0);
    const status = await cli('status', rejectId, '--json');
    const progress = JSON.parse(status.out) as Record<string, unknown>;
    expect(progress).toMatchObject({
      batchId: rejectId,
      status: 'rejected',
      rejectionReason: 'not today',
      total: 3,
    });
    // Stable means fields are only ever added: the documented ones are all there.
    expect(Object.keys(progress)).toEqual(
      expect.arrayContaining([
        'actualCost',
        'approval',
        'approvedBudget',
        'batchId',
        'completed',
        'currency',
        'estimate',
        'failed',
        'inFlight',
        'pending',
        'rejectionReason',
        'startedAt',
        'status',
        'succeeded',
        'total',
        'updatedAt',
      ]),
    );

    const cancelId = `cli-cancel-${Date.now()}`;
    expect((await cli('submit', small, '--id', cancelId)).code).toBe(0);
    expect((await cli('cancel', cancelId)).code).toBe(0);
    const watched = await cli('status', cancelId, '--watch', '--interval', '50');
    expect(watched.out.trim().split('\n').at(-1)).toMatch(/cancelled/);
  });

  test('errors are one clear line with a non-zero exit code', async () => {
    const unknown = await cli('status', 'no-such-batch');
    expect(unknown.code).toBe(1);
    expect(unknown.out.trim()).toBe(
      `maritaca-batch: no batch with id "no-such-batch" in namespace "default" at ${process.env.TEST_TEMPORAL_ADDRESS}`,
    );

    const badBudget = await cli('approve', 'whatever', '--budget', 'lots');
    expect(badBudget.code).not.toBe(0);
    expect(badBudget.out).toMatch(/--budget.*must be a positive number/);

    const unreachable = spawnCli(['--address', '127.0.0.1:1', 'status', 'x']);
    expect(await unreachable.exited).toBe(1);
    expect(unreachable.output()).toMatch(
      /^maritaca-batch: cannot reach the Temporal server at 127\.0\.0\.1:1/,
    );

    const broken = path.join(tmp, 'broken.jsonl');
    writeFileSync(
      broken,
      [
        '{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"sabia-4","messages":[{"role":"robot","content":"x"}]}}',
        'not json',
        '{"id":"b","messages":[]}',
      ].join('\n'),
    );
    const refused = await cli('submit', broken);
    expect(refused.code).toBe(2);
    expect(refused.out).toMatch(/line 1: body\.messages\[0\]\.role/);
    expect(refused.out).toMatch(/line 2: not valid JSON/);
    expect(refused.out).toMatch(/line 3: messages/);
    const estimateRefused = await cli('estimate', broken);
    expect(estimateRefused.code).toBe(2);
  });

  test('pause, resume, set-concurrency, approve refused with a reason, retry-failed and results --merged', async () => {
    const file = path.join(tmp, 'mixed.jsonl');
    writeFileSync(
      file,
      [
        '{"id":"ok-1","messages":[{"role":"user","content":"Olá"}],"maxTokens":50}',
        '{"id":"bad","messages":[{"role":"user","content":"Falha [[fake-status:400]]"}],"maxTokens":50}',
        '{"id":"ok-2","messages":[{"role":"user","content":"Tchau"}],"maxTokens":50}',
      ].join('\n'),
    );
    const batchId = `cli-flow-${Date.now()}`;
    ctx.fake.configure({ latencyMs: 200 });
    expect((await cli('submit', file, '--id', batchId, '--concurrency', '1')).code).toBe(0);
    expect((await cli('pause', batchId)).out).toContain(`Paused batch ${batchId}`);
    expect((await cli('set-concurrency', batchId, '3')).out).toContain('up to 3 calls at once');
    const zero = await cli('set-concurrency', batchId, '0');
    expect(zero.code).not.toBe(0);
    expect((await cli('resume', batchId)).code).toBe(0);

    const tooSmall = await cli('approve', batchId, '--budget', '0.0000001');
    expect(tooSmall.code).toBe(0);
    const notMore = await cli('approve', batchId, '--budget', '0.0000001');
    // Either it ended up waiting for budget and the same amount is refused, or it is not waiting at all.
    expect(notMore.code).toBe(1);
    expect(notMore.out).toMatch(
      /refused: budget .* is not above the current budget|is not waiting for approval/,
    );
    expect((await cli('approve', batchId, '--budget', '1')).code).toBe(0);

    ctx.fake.configure({ latencyMs: 10 });
    const done = await cli('status', batchId, '--watch', '--interval', '50', '--json');
    expect(done.code).toBe(4);
    // The last JSON line is the final progress; the exit-4 explanation follows it on stderr.
    const jsonLines = done.out.split('\n').filter((line) => line.startsWith('{'));
    expect(done.out).toContain(`batch ${batchId} ended completed: 2 of 3 request(s) succeeded, 1 failed`);
    const last = JSON.parse(jsonLines.at(-1)!) as {
      status: string;
      failed: number;
      succeeded: number;
    };
    expect(last).toMatchObject({ status: 'completed', failed: 1, succeeded: 2 });

    const retry = await cli('retry-failed', batchId, '--auto-approve-below', '1', '--json');
    expect(retry.code).toBe(0);
    // The follow-up replays the original input, so the forced failure would come back: this
    // checks the link and what was re-sent, not that it now succeeds.
    expect(JSON.parse(retry.out)).toEqual({ batchId: `${batchId}-retry-1`, retryOf: batchId });
    const merged = await cli(
      'results',
      `${batchId}-retry-1`,
      '--merged',
      '--wait',
      '-o',
      path.join(tmp, 'merged.jsonl'),
    );
    // The forced failure is still failed: "ended without every request succeeding".
    expect(merged.code).toBe(4);
    expect(merged.out).toContain(`merged from ${batchId}, ${batchId}-retry-1`);
    const lines = readOpenAIBatchOutput(readFileSync(path.join(tmp, 'merged.jsonl'), 'utf8'));
    expect(lines.map((l) => l.custom_id)).toEqual(['ok-1', 'bad', 'ok-2']);
    const stats = ctx.fake.stats();
    expect(stats.byRequestId[`${batchId}-retry-1/bad`]).toBeGreaterThan(0);
    expect(stats.byRequestId[`${batchId}-retry-1/ok-1`]).toBeUndefined();
  });
});
