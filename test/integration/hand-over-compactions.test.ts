/**
 * A run that continues as new does not wait for its page compactions: the next run does them
 * again. Page writes are held back until the batch has continued as new, which it could not do
 * if it waited for them; once released, the store ends with one object per page and nothing else.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createBatchStore, createFileObjectStorage, type ObjectStorage } from '../../src/store';
import { questions, startTestContext, type TestContext } from '../helpers/context';
import { waitFor } from '../helpers/wait';

describe('continue-as-new with compactions in flight', () => {
  let ctx: TestContext;
  const folder = createFileObjectStorage();
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  let heldPageWrites = 0;
  const holdingPages: ObjectStorage = {
    ...folder,
    async write(url, body) {
      if (url.includes('/page-')) {
        heldPageWrites += 1;
        await released;
      }
      return folder.write(url, body);
    },
  };
  const store = createBatchStore({
    url: pathToFileURL(mkdtempSync(path.join(tmpdir(), 'mb-hand-over-'))).href,
    objects: () => holdingPages,
  });

  beforeAll(async () => {
    ctx = await startTestContext({ latencyMs: 2 }, { store });
  });
  afterAll(async () => {
    release();
    await ctx?.close();
  });

  test('the batch continues as new while a page is still being compacted; every page is compacted in the end', async () => {
    const requests = questions(1500);
    const handle = await ctx.batches.start(requests, {
      maxConcurrency: 20,
      autoApproveBelow: 1000,
      callsPerActivity: 1,
      historyEventLimit: 2000,
    });
    const runs = async (): Promise<number> => {
      let n = 0;
      for await (const _ of ctx.temporal.workflow.list({ query: `WorkflowId = "${handle.batchId}"` })) n++;
      return n;
    };
    await waitFor(
      async () => heldPageWrites,
      (n) => n > 0,
      { timeoutMs: 120_000, what: 'a page compaction to start' },
    );
    const runsWhenHeld = await runs();
    await waitFor(runs, (n) => n > runsWhenHeld, {
      timeoutMs: 120_000,
      what: 'the batch to continue as new while its compaction is held',
    });
    release();

    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(result.results.map((r) => r.id)).toEqual(requests.map((r) => r.id));
    const names = (await store.batchObjects(handle.batchId)).map((u) => u.slice(u.lastIndexOf('/') + 1));
    expect(names.sort()).toEqual([
      'page-0000000000-0000000500.jsonl',
      'page-0000000500-0000001000.jsonl',
      'page-0000001000-0000001500.jsonl',
    ]);
  }, 300_000);
});
