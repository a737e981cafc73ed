/**
 * Records the histories that `replay.test.ts` replays on every run. Refresh them with
 * `npm run fixtures:histories` after a change that is meant to alter the workflow's commands
 * (then old batches need a `patched()` branch: see the README).
 *
 * `RECORD_SHAPES` (comma-separated shape names, default every shape) records only those shapes,
 * so adding a shape leaves the recorded histories of the others as they are, e.g.
 * `RECORD_SHAPES=approval-timeout,retry-after-hold npm run fixtures:histories`.
 * The timed shapes (approval-timeout, retry-after-hold, rate-window, budget-timeout) each check
 * that their history holds the timer they exist for.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { defaultPayloadConverter } from '@temporalio/common';
import { randomUUID } from 'node:crypto';
import { toJsonlInputLines, type BatchHandle } from '../../src';
import {
  StoreAccessError,
  createBatchStore,
  createFileObjectStorage,
  createS3ObjectStorage,
  type ObjectStorage,
} from '../../src/store';
import { createTestBucket } from '../../src/testing/s3-server';
import { questions, startTestContext, type TestContext } from '../helpers/context';
import { waitFor } from '../helpers/wait';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'histories');
const run = promisify(execFile);
const recording = process.env.RECORD_HISTORIES === '1';
const describeRecording = recording ? describe : describe.skip;

const SHAPES = [
  'approved',
  'rejected',
  'budget-pause',
  'failures',
  'failed',
  'file-source',
  'continue-as-new',
  'approval-timeout',
  'retry-after-hold',
  'rate-window',
  'budget-timeout',
  'workflow-retries',
  'structured-reask',
  'call-runs',
  'api-health',
  'key-leases',
  's3-run-logs',
];
const only = process.env.RECORD_SHAPES?.split(',')
  .map((shape) => shape.trim())
  .filter((shape) => shape !== '');
const unknown = (only ?? []).filter((shape) => !SHAPES.includes(shape));
if (unknown.length > 0) throw new Error(`RECORD_SHAPES names unknown shapes: ${unknown.join(', ')}`);

/** A recording test, skipped unless `RECORD_SHAPES` is unset or names one of its shapes. */
function record(shapes: string[], name: string, fn: () => Promise<void>, timeoutMs?: number): void {
  const wanted = only === undefined || shapes.some((shape) => only.includes(shape));
  (wanted ? test : test.skip)(name, fn, timeoutMs);
}

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

  /** The summaries of the timers the batch started (`TIMER_STARTED` events), in order. */
  async function timersStarted(handle: BatchHandle): Promise<string[]> {
    const { events } = await handle.workflowHandle.fetchHistory();
    return (events ?? []).flatMap((event) => {
      if (!event.timerStartedEventAttributes) return [];
      const summary = event.userMetadata?.summary;
      return [summary ? defaultPayloadConverter.fromPayload<string>(summary) : '(no summary)'];
    });
  }

  const awaiting = (handle: BatchHandle) =>
    waitFor(
      () => handle.progress(),
      (p) => p.status === 'awaiting_approval',
    );

  record(['approved'], 'approved by signal', async () => {
    const handle = await ctx.batches.start(questions(4), { maxConcurrency: 2 });
    await awaiting(handle);
    await handle.approve({ approvedBy: 'fixture' });
    await handle.result();
    await save('approved', handle);
  });

  record(['rejected'], 'rejected', async () => {
    const handle = await ctx.batches.start(questions(2));
    await awaiting(handle);
    await handle.reject('fixture');
    await handle.result();
    await save('rejected', handle);
  });

  record(['budget-pause'], 'budget pause, then a larger approval', async () => {
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

  record(['failures', 'failed'], 'failures recorded per request, and a failed batch', async () => {
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

  record(['file-source'], 'requests uploaded from a file and paged from the store', async () => {
    const file = path.join(ROOT, 'test-artifacts', `fixture-source-${Date.now()}.jsonl`);
    writeFileSync(file, toJsonlInputLines(questions(30), 'short'));
    const handle = await ctx.batches.startFromFile(file, { maxConcurrency: 5, autoApproveBelow: 100 });
    await handle.result();
    await save('file-source', handle);
  });

  record(
    ['continue-as-new'],
    'continue-as-new with outcomes in the store',
    async () => {
      const handle = await ctx.batches.start(questions(1200), {
        maxConcurrency: 30,
        autoApproveBelow: 100,
        historyEventLimit: 2000,
      });
      await handle.result();
      await save('continue-as-new', handle);
    },
    120_000,
  );
  record(['approval-timeout'], 'nobody approves before the approval timeout', async () => {
    const handle = await ctx.batches.start(questions(2), { approvalTimeout: '2s' });
    expect((await handle.result()).status).toBe('expired');
    expect(await timersStarted(handle)).toContain('approval timeout');
    await save('approval-timeout', handle);
  });

  record(
    ['workflow-retries'],
    'a 500 and a hung call come back to the workflow, which retries them after a backoff',
    async () => {
      // Seeded: the same calls fail and hang on every recording.
      ctx.fake.configure({ errorRate500: 0.3, hangRate: 0.15, seed: 5 });
      try {
        const handle = await ctx.batches.start(questions(6), {
          maxConcurrency: 2,
          autoApproveBelow: 10,
          retry: { maximumAttempts: 10, initialInterval: '300ms' },
        });
        const result = await handle.result();
        expect(result.status).toBe('completed');
        expect(await timersStarted(handle)).toContain('retry backoff');
        expect(result.unconfirmedCost ?? 0).toBeGreaterThan(0);
        await save('workflow-retries', handle);
      } finally {
        ctx.fake.configure({ errorRate500: null, hangRate: null, seed: null });
      }
    },
  );

  record(
    ['structured-reask'],
    'answers that do not match their JSON schema are billed and asked again',
    async () => {
      // Seeded: the same answers are broken on every recording.
      ctx.fake.configure({ invalidStructuredRate: 0.5, seed: 4 });
      try {
        const handle = await ctx.batches.start(questions(4), {
          maxConcurrency: 2,
          autoApproveBelow: 10,
          returnExceptions: true,
          structuredOutputRetries: 3,
          responseFormat: {
            type: 'json_schema',
            json_schema: {
              name: 'answer',
              schema: { type: 'object', properties: { value: { type: 'number' } }, required: ['value'] },
            },
          },
        });
        const result = await handle.result();
        expect(result.status).toBe('completed');
        expect(result.results.reduce((sum, r) => sum + r.attempts, 0)).toBeGreaterThan(4);
        await save('structured-reask', handle);
      } finally {
        ctx.fake.configure({ invalidStructuredRate: null, seed: null });
      }
    },
  );

  record(
    ['call-runs'],
    'runs of calls: a failure of its own in a run, a 429 that stops a run and gives back the rest',
    async () => {
      // Seeded: the same calls are refused on every recording.
      ctx.fake.configure({ errorRate429: 0.15, retryAfterSeconds: 1, seed: 7 });
      try {
        const requests = questions(20);
        requests[2]!.messages[0]!.content += ' [[fake-status:400]]';
        const handle = await ctx.batches.start(requests, {
          maxConcurrency: 2,
          autoApproveBelow: 10,
          returnExceptions: true,
          callsPerActivity: 5,
          retry: { maximumAttempts: 10 },
        });
        const result = await handle.result();
        expect(result.status).toBe('completed');
        expect(result.results.filter((r) => !r.ok)).toHaveLength(1);
        expect((await handle.progress()).rateLimitedResponses).toBeGreaterThan(0);
        await save('call-runs', handle);
      } finally {
        ctx.fake.configure({ errorRate429: null, retryAfterSeconds: null, seed: null });
      }
    },
  );

  record(
    ['api-health'],
    'an outage held and probed, a refused key waiting for resume, a 429 burst cut once',
    async () => {
      try {
        const handle = await ctx.batches.start(questions(30), {
          maxConcurrency: 3,
          autoApproveBelow: 10,
          callsPerActivity: 2,
          retry: { maximumAttempts: 3, initialInterval: '200ms' },
          apiProbeInterval: '500ms',
        });
        await waitFor(
          async () => ctx.fake.stats().byStatus['200'] ?? 0,
          (n) => n >= 6,
          { what: 'answers before the outage' },
        );
        ctx.fake.configure({ outage: 'unavailable', outageForMs: 2_000 });
        await waitFor(
          () => handle.progress(),
          (p) => p.waitingFor === 'api_unavailable',
          { what: 'the outage hold' },
        );
        await ctx.fake.outageEnded();
        ctx.fake.configure({ revokeKeyAfterCalls: 4 });
        await waitFor(
          () => handle.progress(),
          (p) => p.status === 'awaiting_credentials',
          { what: 'the credentials pause' },
        );
        ctx.fake.configure({ revokeKeyAfterCalls: null, errorRate429: 0.3, retryAfterSeconds: 1, seed: 3 });
        await handle.resume();
        const result = await handle.result();
        expect(result.status).toBe('completed');
        expect(result.results.every((r) => r.ok)).toBe(true);
        await save('api-health', handle);
      } finally {
        ctx.fake.configure({ outage: null, revokeKeyAfterCalls: null, errorRate429: null, seed: null });
      }
    },
  );

  record(['key-leases'], "starts leased from the key's limiter, declared on the worker", async () => {
    const limited = await startTestContext({ rpm: 600 }, { keyLimits: { rpm: 600, outputTpm: 100_000 } });
    try {
      const handle = await limited.batches.start(questions(12), { maxConcurrency: 3, autoApproveBelow: 10 });
      const result = await handle.result();
      expect(result.status).toBe('completed');
      await save('key-leases', handle);
    } finally {
      await limited.close();
    }
  });

  record(['s3-run-logs'], 'a run lost on an S3 store: answers its log held back count as made', async () => {
    // The first write of a run's log fails once, so the run fails after its calls were answered:
    // the workflow finds nothing in the store and counts the held-back answers as maybe billed.
    const endpoint = process.env.TEST_S3_ENDPOINT!;
    const bucket = `record-${randomUUID().slice(0, 8)}`;
    await createTestBucket(endpoint, bucket);
    const s3 = createS3ObjectStorage({ endpoint });
    let failed = false;
    const failingOnce: ObjectStorage = {
      ...s3,
      async write(url, body) {
        if (!failed && url.includes('/log-')) {
          failed = true;
          throw new StoreAccessError('write', url, new Error('injected for the recording'), false);
        }
        return s3.write(url, body);
      },
    };
    const store = createBatchStore({
      url: `s3://${bucket}/batches`,
      objects: (scheme) => (scheme === 's3' ? failingOnce : createFileObjectStorage()),
    });
    const onS3 = await startTestContext({ latencyMs: 5 }, { store });
    try {
      const handle = await onS3.batches.start(questions(8), {
        maxConcurrency: 1,
        autoApproveBelow: 10,
        callsPerActivity: 4,
      });
      const result = await handle.result();
      expect(result.status).toBe('completed');
      expect(failed).toBe(true);
      expect((await handle.progress()).budget?.unconfirmed ?? 0).toBeGreaterThan(0);
      await save('s3-run-logs', handle);
    } finally {
      await onS3.close();
    }
  });

  record(['retry-after-hold'], 'a 429 with Retry-After holds every call', async () => {
    // Seeded: the same calls are refused on every recording.
    ctx.fake.configure({ errorRate429: 0.5, retryAfterSeconds: 1, seed: 8 });
    try {
      const handle = await ctx.batches.start(questions(4), {
        maxConcurrency: 2,
        autoApproveBelow: 10,
        retry: { maximumAttempts: 20 },
      });
      const result = await handle.result();
      expect(result.status).toBe('completed');
      expect((await handle.progress()).rateLimitedResponses).toBeGreaterThan(0);
      expect(await timersStarted(handle)).toContain('Retry-After hold');
      await save('retry-after-hold', handle);
    } finally {
      ctx.fake.configure({ errorRate429: null, retryAfterSeconds: null, seed: null });
    }
  });

  record(['rate-window'], 'a per-minute token limit holds calls back until earlier ones report', async () => {
    // Each call reserves its max_tokens (200) of the 300 output tokens a minute, so the second
    // waits on a rate-window timer until the first reports its real (short) answer and frees room:
    // the timer starts and is cancelled, without waiting out the minute.
    const requests = questions(3).map((r) => ({ ...r, maxTokens: 200 }));
    const handle = await ctx.batches.start(requests, {
      maxConcurrency: 3,
      autoApproveBelow: 10,
      rateLimit: { outputTpm: 300 },
    });
    expect((await handle.result()).status).toBe('completed');
    expect(await timersStarted(handle)).toContain('per-minute rate window');
    await save('rate-window', handle);
  });

  record(['budget-timeout'], 'out of budget, nobody raises it before the timeout', async () => {
    ctx.fake.configure({ replyTokens: 'max' });
    try {
      // The approval itself must come within the timeout too: 3 s against a 50 ms poll.
      const handle = await ctx.batches.start(questions(6), { maxConcurrency: 2, approvalTimeout: '3s' });
      const waiting = await awaiting(handle);
      await handle.approveBudget(waiting.estimate!.maxCost * 0.4);
      const result = await handle.result();
      expect(result.status).toBe('budget_exhausted');
      expect(result.results.length).toBeGreaterThan(0);
      expect(result.results.length).toBeLessThan(6);
      expect(await timersStarted(handle)).toContain('budget approval timeout');
      await save('budget-timeout', handle);
    } finally {
      ctx.fake.configure({ replyTokens: null });
    }
  });
});
