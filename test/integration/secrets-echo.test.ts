/**
 * The API key must not leak even when Maritaca repeats it: with the fake in `echoKeyInErrors`
 * mode every error body carries the bearer token (in the message and in `request_headers`), so
 * only the activity's redaction keeps it out of what the batch records and shows. Batches meet
 * every kind of error (400/422 refusals, retried 500s, a 429, revoked keys, inline and stored
 * outcomes, `returnExceptions` on and off) and then every channel is searched for the key:
 * each run's history, the worker's logs at every level, what the client sees, and the raw bytes
 * of every object in the batch store.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { inspect, types } from 'node:util';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection, Runtime, Worker, type LogEntry } from '@temporalio/worker';
import {
  completionsQuery,
  createFileObjectStorage,
  createWorkerLogger,
  describeRetryableFailure,
  FailureTypes,
  INLINE_RESULTS_MAX,
  MaritacaBatchClient,
  MaritacaBatchPlugin,
  storeFromUrl,
  type BatchHandle,
  type BatchOptions,
  type BatchProgress,
  type BatchResult,
  type BatchStore,
} from '../../src';
import { startFakeMaritaca, type FakeMaritacaServer } from '../../src/testing/fake-maritaca';
import { requestLogAttributes } from '../../src/worker/logging';

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;
type HistoryEvent = NonNullable<History['events']>[number];

/** Every log entry of this process's Runtime (worker, activities, workflows, Core), at every level. */
const logs: { head: string; text: string }[] = [];

/** Error objects in full: `message`, `stack` and `cause` are not enumerable, so JSON alone drops them. */
function serialize(value: unknown): string {
  const seen = new WeakSet<object>();
  const json = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (v && typeof v === 'object') {
      if (seen.has(v)) return '[circular]';
      seen.add(v);
      // Errors from the workflow sandbox are of another realm: `instanceof Error` misses them.
      if (types.isNativeError(v) || v instanceof Error) {
        const all: Record<string, unknown> = {};
        for (const name of Object.getOwnPropertyNames(v))
          all[name] = (v as unknown as Record<string, unknown>)[name];
        return { name: v.name, ...all, cause: v.cause };
      }
    }
    return v;
  });
  const inspected = inspect(value, {
    depth: 20,
    maxArrayLength: null,
    maxStringLength: null,
    breakLength: Infinity,
  });
  return `${json}\n${inspected}`;
}

// Before anything can create a Runtime (one per process, and jest gives this file its own
// process): the worker's own logger at TRACE, with Core's logs forwarded at TRACE as well.
Runtime.install({
  logger: createWorkerLogger(
    'TRACE',
    (entry: LogEntry) =>
      logs.push({
        head: `${entry.level} ${entry.message.slice(0, 60)}`,
        text: `${entry.level} ${entry.message} ${serialize(entry.meta ?? {})}`,
      }),
    {
      onRetryableFailure: (failure) =>
        logs.push({
          head: 'onRetryableFailure',
          text: `${describeRetryableFailure(failure)} ${serialize(failure)}`,
        }),
    },
  ),
  telemetryOptions: { logging: { filter: { core: 'TRACE', other: 'INFO' }, forward: {} } },
});

const KEY_PREFIX = 'sk-echo-';
const KEY_RANDOM = randomBytes(24).toString('hex');
/** A key no other text can contain by chance. */
const API_KEY = `${KEY_PREFIX}${KEY_RANDOM}`;
/**
 * What a leak may look like: the key, the key cut at its start (a server or a log line that
 * trims), the random part alone, and its first and last 16 hex digits (an echo cut at either end).
 */
const NEEDLES: readonly string[] = [
  API_KEY,
  API_KEY.slice(4),
  KEY_RANDOM,
  KEY_RANDOM.slice(0, 16),
  KEY_RANDOM.slice(-16),
];

/**
 * The leaks in some texts, one line per channel: how many of its texts hold a needle, and the
 * first one's words around it. Empty when nothing leaked.
 */
function leaksIn(texts: readonly { channel: string; text: string }[]): string[] {
  const byChannel = new Map<string, { count: number; first: string }>();
  for (const { channel, text } of texts) {
    const needle = NEEDLES.find((n) => text.includes(n));
    if (needle === undefined) continue;
    const at = text.indexOf(needle);
    const around = text.slice(Math.max(0, at - 160), at + needle.length + 40).replace(/\s+/g, ' ');
    const known = byChannel.get(channel);
    if (known) known.count += 1;
    else byChannel.set(channel, { count: 1, first: `"${needle}" in …${around}…` });
  }
  return [...byChannel].map(([channel, { count, first }]) => `${channel} (${count}×): ${first}`);
}

/** What the fake says when a request carries `[[fake-status:NNN]]`; the echo comes right after it. */
const FORCED_TEXT = "forced by the request's content";
/** The echo as the activity's redaction leaves it. */
const REDACTED_ECHO = '(key: [redacted])';

type Request = { id: string; messages: { role: 'user'; content: string }[] };

function ask(id: string, text: string): Request {
  return { id, messages: [{ role: 'user', content: text }] };
}

/** Good questions, with the statuses given forced at the given positions. */
function mixed(count: number, forced: Record<number, number>): Request[] {
  return Array.from({ length: count }, (_, i) =>
    forced[i] !== undefined
      ? ask(`r${i}`, `Pergunta ${i} recusada [[fake-status:${forced[i]}]]`)
      : ask(`r${i}`, `Pergunta ${i}: quanto é ${i} + ${i}?`),
  );
}

/** Short retries, so 500s are retried to their limit in milliseconds (a 429 still holds 1 s). */
const FAST_RETRY = { maximumAttempts: 3, initialInterval: 10, maximumInterval: 50, backoffCoefficient: 1 };
const BASE_OPTIONS: BatchOptions = { autoApproveBelow: 1000, maxOutputTokens: 20, retry: FAST_RETRY };

/** Everything one batch left behind that a reader of its history or a client could see. */
interface Seen {
  name: string;
  handle: BatchHandle;
  history: string;
  client: string;
}

describe('an API key Maritaca echoes in its errors stays out of everything the batch records', () => {
  let fake: FakeMaritacaServer;
  let storeRoot: string;
  let store: BatchStore;
  let nativeConnection: NativeConnection;
  let connection: Connection;
  let temporal: Client;
  let batches: MaritacaBatchClient;
  let worker: Worker;
  let running: Promise<void>;
  const seen: Seen[] = [];
  const echoedBody: string[] = [];

  /** The history of every run of a batch (back from the last through continue-as-new), payloads decoded. */
  async function historiesOf(handle: BatchHandle): Promise<string> {
    const texts: string[] = [];
    let runId: string | undefined = (await handle.workflowHandle.describe()).runId;
    for (let runs = 0; runId && runs < 100; runs++) {
      const history: History = await temporal.workflow.getHandle(handle.batchId, runId).fetchHistory();
      const json = serialize(history);
      const decoded: string[] = [];
      for (const match of json.matchAll(/"data":"([A-Za-z0-9+/=]+)"/g)) {
        decoded.push(Buffer.from(match[1]!, 'base64').toString('utf8'));
      }
      texts.push(json, ...decoded);
      const started: HistoryEvent['workflowExecutionStartedEventAttributes'] =
        history.events?.[0]?.workflowExecutionStartedEventAttributes;
      runId = started?.continuedExecutionRunId || undefined;
    }
    return texts.join('\n');
  }

  /** What a client can read of a batch once it has ended, besides its result. */
  async function clientView(handle: BatchHandle): Promise<unknown[]> {
    const metadata = await handle.workflowHandle.query('__temporal_workflow_metadata');
    const completions = await handle.workflowHandle.query(completionsQuery, { from: 0, limit: 5000 });
    const outcomes: unknown[] = [];
    try {
      for await (const outcome of handle.outcomes()) outcomes.push(outcome);
    } catch (err) {
      outcomes.push(err);
    }
    return [
      await handle.progress(),
      await handle.estimate(),
      metadata,
      completions,
      outcomes,
      await handle.workflowHandle.describe(),
    ];
  }

  /**
   * Runs a batch to its end, reading its progress all along (transient fields included). A batch
   * that stops to wait for new credentials is read there, then cancelled.
   */
  async function run(
    name: string,
    requests: Request[],
    options: BatchOptions,
  ): Promise<{ result?: BatchResult; error?: unknown; waitedForCredentials: boolean }> {
    const handle = await batches.start(requests, { ...BASE_OPTIONS, ...options });
    const snapshots: BatchProgress[] = [];
    let settled = false;
    let waitedForCredentials = false;
    const ended = handle.result().then(
      (result) => ({ result }),
      (error: unknown) => ({ error }),
    );
    void ended.finally(() => (settled = true));
    while (!settled) {
      const progress = await handle.progress();
      snapshots.push(progress);
      if ((progress.status as string) === 'awaiting_credentials') {
        waitedForCredentials = true;
        await handle.cancel();
        break;
      }
      await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 200))]);
    }
    const outcome = await ended;
    const errorText =
      'error' in outcome
        ? [
            String(outcome.error),
            serialize(outcome.error),
            serialize(await handle.workflowHandle.result().catch((e: unknown) => e)),
          ].join('\n')
        : '';
    const client = [
      serialize(outcome),
      errorText,
      serialize(snapshots),
      serialize(await clientView(handle)),
    ].join('\n');
    seen.push({ name, handle, history: await historiesOf(handle), client });
    return { ...outcome, waitedForCredentials };
  }

  beforeAll(async () => {
    const address = process.env.TEST_TEMPORAL_ADDRESS;
    const bundlePath = process.env.TEST_WORKFLOW_BUNDLE;
    if (!address || !bundlePath) throw new Error('The jest global setup did not run');
    fake = await startFakeMaritaca({ apiKey: API_KEY, echoKeyInErrors: true, latencyMs: 0 });
    storeRoot = mkdtempSync(path.join(tmpdir(), 'mb-echo-store-'));
    store = storeFromUrl(pathToFileURL(storeRoot).href);
    const taskQueue = `test-echo-${randomUUID()}`;
    nativeConnection = await NativeConnection.connect({ address });
    worker = await Worker.create({
      connection: nativeConnection,
      taskQueue,
      plugins: [
        new MaritacaBatchPlugin({
          apiKey: API_KEY,
          baseURL: fake.url,
          requestTimeoutMs: 5_000,
          workflowBundle: { codePath: bundlePath },
          store,
          encryption: false,
        }),
      ],
      // As `runWorker` has it: request ids and attempt limits in the activities' log entries.
      interceptors: { activity: [requestLogAttributes] },
    });
    running = worker.run();
    connection = await Connection.connect({ address });
    temporal = new Client({ connection });
    batches = new MaritacaBatchClient({ client: temporal, taskQueue, store });

    // The fake does echo: a bare call gets the key back, so its absence below means redaction.
    const response = await fetch(`${fake.url}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'sabia-4',
        messages: [{ role: 'user', content: 'oi [[fake-status:400]]' }],
      }),
    });
    echoedBody.push(await response.text());

    // Inline, one activity per request and runs of calls: 400 and 422 refused, 500 retried to
    // its limit, a 429 held and tried again, beside good answers.
    const forced = { 1: 400, 2: 422, 3: 500, 4: 429 };
    for (const callsPerActivity of [1, 'auto'] as const) {
      const { result } = await run(`inline, callsPerActivity ${callsPerActivity}`, mixed(7, forced), {
        returnExceptions: true,
        callsPerActivity,
      });
      expect(result?.status).toBe('completed');
      const byId = Object.fromEntries(result!.results.map((r) => [r.id, r]));
      expect(byId.r0).toMatchObject({ ok: true });
      expect(byId.r1).toMatchObject({ ok: false, error: { type: FailureTypes.BadRequest, status: 400 } });
      expect(byId.r2).toMatchObject({ ok: false, error: { type: FailureTypes.BadRequest, status: 422 } });
      expect(byId.r3).toMatchObject({
        ok: false,
        error: { type: FailureTypes.ServerError, status: 500 },
        attempts: 3,
      });
      expect(byId.r4).toMatchObject({ ok: false, error: { type: FailureTypes.RateLimited, status: 429 } });
    }

    // A key that stops working mid-batch (401), and an account or key refused from the start.
    for (const [status, after] of [
      [401, 2],
      [402, 0],
      [403, 0],
    ] as const) {
      fake.configure({ revokeKeyAfterCalls: after, revokedStatus: status });
      try {
        const { result, waitedForCredentials } = await run(`revoked ${status}`, mixed(5, {}), {
          returnExceptions: true,
          maxConcurrency: 1,
        });
        if (!waitedForCredentials) {
          expect(result!.results.some((r) => !r.ok && r.error.status === status)).toBe(true);
        }
      } finally {
        fake.configure({ revokeKeyAfterCalls: null, revokedStatus: null });
      }
    }

    // Without returnExceptions the first failure fails the batch: its message and details too.
    const refused = await run('returnExceptions false, 400', mixed(4, { 2: 400 }), { maxConcurrency: 1 });
    expect(refused.error).toBeDefined();
    fake.configure({ revokeKeyAfterCalls: 1 });
    try {
      const revoked = await run('returnExceptions false, 401', mixed(4, {}), { maxConcurrency: 1 });
      if (!revoked.waitedForCredentials) expect(revoked.error).toBeDefined();
    } finally {
      fake.configure({ revokeKeyAfterCalls: null });
    }

    // Stored: more requests than a history holds inline, so outcomes (failures included) live in
    // the store; failures on both sides of the inline limit.
    const count = INLINE_RESULTS_MAX + 20;
    const storedForced = { 5: 400, 600: 422, 1003: 500, 1010: 429, 1015: 400 };
    const stored = await run('stored', mixed(count, storedForced), {
      returnExceptions: true,
      maxConcurrency: 50,
    });
    expect(stored.result?.resultsRef).toBeDefined();
    expect(stored.result?.results).toHaveLength(count);
    expect(stored.result!.results.find((r) => r.id === 'r1003')).toMatchObject({ ok: false, attempts: 3 });
    expect(stored.result!.results.filter((r) => !r.ok).map((r) => r.id)).toEqual(
      Object.keys(storedForced).map((i) => `r${i}`),
    );
  }, 300_000);

  afterAll(async () => {
    worker?.shutdown();
    await running;
    await nativeConnection?.close();
    await connection?.close();
    await fake?.close();
    if (storeRoot) rmSync(storeRoot, { recursive: true, force: true });
  });

  test('the fake did echo the key in its error bodies', () => {
    expect(echoedBody[0]).toContain(FORCED_TEXT);
    expect(echoedBody[0]).toContain(`(key: ${API_KEY})`);
    expect(echoedBody[0]).toContain('request_headers');
  });

  test('not in any run of any batch history', () => {
    const all = seen.map((s) => s.history).join('\n');
    // The errors did reach the histories, so the search means something.
    expect(all).toContain(FORCED_TEXT);
    expect(all).toContain('Invalid or revoked API key');
    // Payloads were decoded (a run's outcomes are only there): the requests are in the input.
    expect(all).toContain('Pergunta 0: quanto é 0 + 0?');
    expect(leaksIn(seen.map((s) => ({ channel: `history of ${s.name}`, text: s.history })))).toEqual([]);
    // And what did reach them was the echo, redacted.
    expect(all).toContain(REDACTED_ECHO);
  });

  test('not in the worker logs, at any level', () => {
    const text = logs.map((entry) => entry.text).join('\n');
    // Below INFO too: the demoted retries at DEBUG, Core's and the SDK's activations at TRACE.
    for (const level of ['TRACE', 'DEBUG', 'WARN']) {
      expect(logs.some((e) => e.text.startsWith(`${level} `) && e.text.includes(FORCED_TEXT))).toBe(true);
    }
    expect(text).toContain(FailureTypes.ServerError);
    expect(text).toContain(FailureTypes.RateLimited);
    expect(text).toContain(FailureTypes.AuthenticationError);
    expect(
      leaksIn(logs.map((entry) => ({ channel: `worker log: ${entry.head}`, text: entry.text }))),
    ).toEqual([]);
    expect(text).toContain(REDACTED_ECHO);
  });

  test('not in what clients see: results, errors, progress, queries, outcomes', () => {
    const all = seen.map((s) => s.client).join('\n');
    expect(all).toContain(FORCED_TEXT);
    expect(all).toContain('BatchRequestFailedError');
    expect(leaksIn(seen.map((s) => ({ channel: `client view of ${s.name}`, text: s.client })))).toEqual([]);
    expect(all).toContain(REDACTED_ECHO);
  });

  test('not in any object of the batch store', async () => {
    const raw = createFileObjectStorage();
    const objects = new Map<string, string>();
    for (const s of seen) {
      for (const url of await store.batchObjects(s.handle.batchId)) {
        objects.set(url, (await raw.read(url)).toString('utf8'));
      }
    }
    // Whatever else is in the store's folder, read as bytes too.
    const files = readdirSync(storeRoot, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    for (const file of files) {
      const full = path.join(file.parentPath, file.name);
      objects.set(pathToFileURL(full).href, readFileSync(full).toString('utf8'));
    }
    const storedBatch = seen.find((s) => s.name === 'stored')!.handle.batchId;
    const storedText = [...objects]
      .filter(([url]) => url.includes(encodeURIComponent(storedBatch)))
      .map(([, text]) => text)
      .join('\n');
    expect(storedText).toContain(FORCED_TEXT);
    const all = [...objects].map(([url, text]) => ({ channel: `store object ${url}`, text }));
    expect(leaksIn(all)).toEqual([]);
    expect(storedText).toContain(REDACTED_ECHO);
  });
});
