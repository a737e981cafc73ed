/**
 * What a new team meets in its first hour with the CLI, as real processes: unique batch ids, a
 * `list` that never waits and shows every batch once, no silent waits, one error style with
 * documented exit codes, and the key's limits on `submit`.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KNOWN_MODELS, toJsonlInputLines } from '../../src';
import { inputOf } from '../../src/client/follow-up';
import { questions, startTestContext, type TestContext } from '../helpers/context';
import { spawnCli } from '../helpers/processes';
import { waitFor } from '../helpers/wait';

describe('the CLI a team can trust', () => {
  let ctx: TestContext;
  let flags: string[];
  const tmp = mkdtempSync(path.join(tmpdir(), 'mb-usability-'));

  async function cli(...args: string[]): Promise<{ code: number | null; out: string }> {
    const run = spawnCli([...flags, ...args]);
    const code = await run.exited;
    return { code, out: run.output() };
  }

  function file(
    name: string,
    requests: { id: string; messages: { role: 'user'; content: string }[] }[],
  ): string {
    const target = path.join(tmp, name);
    writeFileSync(target, toJsonlInputLines(requests, 'short'));
    return target;
  }

  beforeAll(async () => {
    ctx = await startTestContext({ latencyMs: 5 });
    flags = ['--address', process.env.TEST_TEMPORAL_ADDRESS!, '--task-queue', ctx.taskQueue];
  });
  afterAll(async () => {
    await ctx?.close();
  });

  test('an id already used is refused with the choices; --rerun starts an ended batch again', async () => {
    const batchId = `usability-id-${randomUUID()}`;
    const small = file('small.jsonl', questions(2));
    expect((await cli('submit', small, '--id', batchId)).code).toBe(0);

    const whileRunning = await cli('submit', small, '--id', batchId);
    expect(whileRunning.code).toBe(2);
    expect(whileRunning.out).toContain(`batch id "${batchId}" is already used by a running batch`);
    expect(whileRunning.out).toContain(`maritaca-batch retry-failed ${batchId}`);

    expect((await cli('approve', batchId)).code).toBe(0);
    expect((await cli('status', batchId, '--watch', '--interval', '50')).code).toBe(0);
    const afterEnd = await cli('submit', small, '--id', batchId);
    expect(afterEnd.code).toBe(2);
    expect(afterEnd.out).toMatch(/already used by a finished batch.*--rerun/);
    // Large files are refused before their upload, so no upload is left in the store either
    // (the first batch's answers are there as receipts of its runs of calls).
    const large = file('large.jsonl', questions(1100));
    const largeRefused = await cli('submit', large, '--id', batchId);
    expect(largeRefused.code).toBe(2);
    expect((await ctx.batches.store.batchObjects(batchId)).filter((url) => /requests-/.test(url))).toEqual(
      [],
    );

    const rerun = await cli('submit', small, '--id', batchId, '--rerun', '--auto-approve-below', '1');
    expect(rerun.code).toBe(0);
    expect((await cli('status', batchId, '--watch', '--interval', '50')).code).toBe(0);
  });

  test('list shows each batch once with done/total and cost, and never waits on a running one', async () => {
    const longId = `usability-list-${randomUUID()}`;
    const requests = questions(1200);
    const handle = await ctx.batches.start(
      requests,
      { autoApproveBelow: 100, maxConcurrency: 40, historyEventLimit: 2000 },
      { batchId: longId },
    );
    const result = await handle.result();
    expect(result.runs).toBeGreaterThan(1);
    const waitingId = `usability-waiting-${randomUUID()}`;
    await ctx.batches.start(questions(3), {}, { batchId: waitingId });
    await waitFor(
      () => ctx.batches.getHandle(waitingId).progress(),
      (p) => p.status === 'awaiting_approval',
    );

    const list = await cli('list', '--json', '--limit', '200');
    expect(list.code).toBe(0);
    const rows = list.out
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            batchId: string;
            status: string;
            completed?: number;
            total?: number;
            actualCost?: number;
          },
      );
    const mine = rows.filter((r) => r.batchId === longId);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ status: 'completed', completed: 1200, total: 1200 });
    expect(mine[0]!.actualCost).toBeGreaterThan(0);
    expect(rows.find((r) => r.batchId === waitingId)).toMatchObject({
      status: 'awaiting_approval',
      completed: 0,
      total: 3,
    });
    expect(rows.some((r) => r.status === 'continued_as_new')).toBe(false);

    const text = await cli('list');
    expect(text.out).toMatch(new RegExp(`${longId}\\s+completed\\s+1200/1200`));
  }, 180_000);

  test('no silent waits: results and status --watch say what the batch waits for and how to unblock it', async () => {
    const batchId = `usability-wait-${randomUUID()}`;
    expect((await cli('submit', file('wait.jsonl', questions(3)), '--id', batchId)).code).toBe(0);

    const early = await cli('results', batchId);
    expect(early.code).toBe(3);
    expect(early.out).toContain(`batch ${batchId} has not ended: awaiting_approval`);
    expect(early.out).toContain(`maritaca-batch approve ${batchId}`);

    const watch = spawnCli([...flags, 'status', batchId, '--watch', '--interval', '50']);
    await watch.waitForLine(new RegExp(`waiting for approval .*: maritaca-batch approve ${batchId}`));
    const waiting = spawnCli([...flags, 'results', batchId, '--wait']);
    await waiting.waitForLine(/awaiting_approval/);
    expect((await cli('approve', batchId)).code).toBe(0);
    expect(await watch.exited).toBe(0);
    expect(await waiting.exited).toBe(0);
    const lines = waiting
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'));
    expect(lines).toHaveLength(3);
  });

  test('one error style: bad values and model names exit 2 naming the field and the accepted list', async () => {
    const small = file('models.jsonl', questions(1));
    for (const command of ['estimate', 'submit']) {
      const bad = await cli(command, small, '--model', 'sabia4');
      expect(bad.code).toBe(2);
      expect(bad.out).toContain('--model');
      expect(bad.out).toContain(`known models: ${KNOWN_MODELS.join(', ')}`);
    }
    const inFile = path.join(tmp, 'bad-model.jsonl');
    writeFileSync(
      inFile,
      JSON.stringify({ id: 'x', model: 'sabia4', messages: [{ role: 'user', content: 'Oi' }] }) + '\n',
    );
    for (const command of ['estimate', 'submit']) {
      const bad = await cli(command, inFile);
      expect(bad.code).toBe(2);
      expect(bad.out).toMatch(/line 1: model: must be one of sabia-4/);
    }
    const badConcurrency = await cli('submit', small, '--concurrency', 'many');
    expect(badConcurrency.code).toBe(2);
    expect(badConcurrency.out).toMatch(
      /^maritaca-batch: option '--concurrency <n>' argument 'many' is invalid/,
    );
    expect((await cli('submit', small, '--no-such-flag')).code).toBe(2);
    expect((await cli('no-such-command')).code).toBe(2);
  });

  test('a batch whose every request failed ends with exit 4', async () => {
    const batchId = `usability-failed-${randomUUID()}`;
    const failing = Array.from({ length: 4 }, (_, i) => ({
      id: `f${i}`,
      messages: [{ role: 'user' as const, content: `Pergunta ${i} [[fake-status:400]]` }],
    }));
    expect(
      (await cli('submit', file('failing.jsonl', failing), '--id', batchId, '--auto-approve-below', '1'))
        .code,
    ).toBe(0);
    const watched = await cli('status', batchId, '--watch', '--interval', '50');
    expect(watched.code).toBe(4);
    expect(watched.out).toContain(`batch ${batchId} ended completed: 0 of 4 request(s) succeeded, 4 failed`);
    const results = await cli('results', batchId, '-o', path.join(tmp, 'failed.jsonl'));
    expect(results.code).toBe(4);
  });

  test("submit takes the key's limits", async () => {
    const batchId = `usability-limits-${randomUUID()}`;
    const submitted = await cli(
      'submit',
      file('limits.jsonl', questions(2)),
      '--id',
      batchId,
      '--rpm',
      '60',
      '--input-tpm',
      '128000',
      '--output-tpm',
      '10000',
    );
    expect(submitted.code).toBe(0);
    const input = await inputOf(ctx.temporal, batchId);
    expect(input.options?.rateLimit).toEqual({ rpm: 60, inputTpm: 128000, outputTpm: 10000 });
    await ctx.batches.getHandle(batchId).reject('not needed');
  });
});
