/**
 * Records the histories that `replay.test.ts` replays on every run. Refresh them with
 * `npm run fixtures:histories` after a change that is meant to alter the workflow's commands
 * (then old batches need a `patched()` branch: see the README).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { toJsonlInputLines, type BatchHandle } from '../../src';
import { questions, startTestContext, type TestContext } from '../helpers/context';
import { waitFor } from '../helpers/wait';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'histories');
const run = promisify(execFile);
const recording = process.env.RECORD_HISTORIES === '1';
const describeRecording = recording ? describe : describe.skip;

const ROOT = path.join(__dirname, '..', '..');
const JSON_PLAIN = Buffer.from('json/plain').toString('base64');

/**
 * Keeps paths of the recording machine out of the fixtures: stack traces go, and the repository
 * path inside payloads (results files) becomes `<repo>`. Replay compares commands, not these.
 */
function sanitize(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(sanitize);
  if (typeof node === 'string') return node.split(ROOT).join('<repo>');
  if (typeof node !== 'object' || node === null) return node;
  const object = node as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(object)) {
    if (key === 'stackTrace') out[key] = '';
    else out[key] = sanitize(value);
  }
  const metadata = object.metadata as Record<string, unknown> | undefined;
  if (metadata?.encoding === JSON_PLAIN && typeof object.data === 'string') {
    const text = Buffer.from(object.data, 'base64').toString('utf8').split(ROOT).join('<repo>');
    out.data = Buffer.from(text, 'utf8').toString('base64');
  }
  return out;
}

describeRecording('recording replay fixtures', () => {
  let ctx: TestContext;

  beforeAll(async () => {
    ctx = await startTestContext({ latencyMs: 5 });
  });
  afterAll(async () => {
    await ctx?.close();
  });

  /** Saves every run of the batch, oldest first, as `<shape>-<n>.json`. */
  async function save(shape: string, handle: BatchHandle): Promise<void> {
    const runIds: string[] = [];
    for await (const execution of ctx.temporal.workflow.list({ query: `WorkflowId = "${handle.batchId}"` })) {
      runIds.push(execution.runId);
    }
    let n = 0;
    for (const runId of runIds.reverse()) {
      // The CLI writes the canonical JSON form that replay (and the UI's download) use.
      const { stdout } = await run(
        process.env.TEST_TEMPORAL_CLI!,
        [
          'workflow',
          'show',
          '--workflow-id',
          handle.batchId,
          '--run-id',
          runId,
          '--output',
          'json',
          '--address',
          process.env.TEST_TEMPORAL_ADDRESS!,
        ],
        { maxBuffer: 64 * 1024 * 1024 },
      );
      writeFileSync(
        path.join(FIXTURES, `${shape}-${++n}.json`),
        JSON.stringify(sanitize(JSON.parse(stdout)), null, 1),
      );
    }
  }

  const awaiting = (handle: BatchHandle) =>
    waitFor(
      () => handle.progress(),
      (p) => p.status === 'awaiting_approval',
    );

  test('approved by signal', async () => {
    const handle = await ctx.batches.start(questions(4), { maxConcurrency: 2 });
    await awaiting(handle);
    await handle.approve({ approvedBy: 'fixture' });
    await handle.result();
    await save('approved', handle);
  });

  test('rejected', async () => {
    const handle = await ctx.batches.start(questions(2));
    await awaiting(handle);
    await handle.reject('fixture');
    await handle.result();
    await save('rejected', handle);
  });

  test('budget pause, then a larger approval', async () => {
    ctx.fake.configure({ replyTokens: 'max' });
    const handle = await ctx.batches.start(questions(6), { maxConcurrency: 2 });
    const waiting = await awaiting(handle);
    await handle.approveBudget(waiting.estimate!.maxCost * 0.4);
    await waitFor(
      () => handle.progress(),
      (p) => p.status === 'awaiting_budget',
    );
    await handle.approveBudget(waiting.estimate!.maxCost);
    await handle.result();
    ctx.fake.configure({ replyTokens: null });
    await save('budget-pause', handle);
  });

  test('failures recorded per request, a 429 hold, and a failed batch', async () => {
    const handle = await ctx.batches.start(
      [...questions(3), { id: 'bad', messages: [{ role: 'user', content: 'x [[fake-status:400]]' }] }],
      { autoApproveBelow: 10, returnExceptions: true },
    );
    await handle.result();
    await save('failures', handle);

    const failing = await ctx.batches.start(
      [{ id: 'bad', messages: [{ role: 'user', content: 'x [[fake-status:401]]' }] }, ...questions(2)],
      { autoApproveBelow: 10, maxConcurrency: 1 },
    );
    await failing.result().catch(() => undefined);
    await save('failed', failing);
  });

  test('requests uploaded from a file and paged from the store', async () => {
    const file = path.join(ROOT, 'test-artifacts', `fixture-source-${Date.now()}.jsonl`);
    writeFileSync(file, toJsonlInputLines(questions(30), 'short'));
    const handle = await ctx.batches.startFromFile(file, { maxConcurrency: 5, autoApproveBelow: 100 });
    await handle.result();
    await save('file-source', handle);
  });

  test('continue-as-new with outcomes in the store', async () => {
    const handle = await ctx.batches.start(questions(1200), {
      maxConcurrency: 30,
      autoApproveBelow: 100,
      historyEventLimit: 2000,
    });
    await handle.result();
    await save('continue-as-new', handle);
  }, 120_000);
});
