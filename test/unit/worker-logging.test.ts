import { inspect } from 'node:util';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { LogEntry, LogLevel } from '@temporalio/worker';
import { createActivities, type CallMaritacaInput } from '../../src';
import { startFakeMaritaca, type FakeMaritacaServer } from '../../src/testing/fake-maritaca';
import {
  createWorkerLogger,
  describeRetryableFailure,
  requestLogAttributes,
  type RetryableFailure,
} from '../../src/worker/logging';
import { createWorkerLogger as exported } from '../../src/worker';

const KEY = 'sk-logging-test-4242';

const request: CallMaritacaInput = {
  requestId: 'pergunta-07',
  model: 'sabiazinho-4',
  messages: [{ role: 'user', content: 'Qual é a capital do Peru?' }],
  maxTokens: 50,
};

/** A line as the SDK's default log function would print it, stack traces included. */
const printed = (entry: LogEntry): string => `[${entry.level}] ${entry.message} ${inspect(entry.meta)}`;

interface Run {
  entries: LogEntry[];
  heard: RetryableFailure[];
  error: unknown;
}

describe('createWorkerLogger, fed by the real Activity runner and callMaritaca against the fake server', () => {
  let fake: FakeMaritacaServer;

  beforeAll(async () => {
    fake = await startFakeMaritaca({ apiKey: KEY, latencyMs: 1 });
  });
  afterAll(async () => {
    await fake.close();
  });
  beforeEach(() => {
    fake.configure({ errorRate500: null, errorRate429: null, hangRate: null });
  });

  /** Runs `fn` (default: the real callMaritaca) once in the SDK's Activity runner, logging through our logger. */
  async function run(
    level: LogLevel,
    { attempt = 1, maximumAttempts = 20, apiKey = KEY, baseURL = fake.url, fn = undefined as unknown } = {},
  ): Promise<Run> {
    const entries: LogEntry[] = [];
    const heard: RetryableFailure[] = [];
    const env = new MockActivityEnvironment(
      { attempt, activityType: 'callMaritaca', retryPolicy: { maximumAttempts } },
      {
        logger: createWorkerLogger(level, (e) => entries.push(e), {
          onRetryableFailure: (f) => heard.push(f),
        }),
        interceptors: [requestLogAttributes],
      },
    );
    const activity =
      (fn as ((input: CallMaritacaInput) => Promise<unknown>) | undefined) ??
      createActivities({ apiKey, baseURL, requestTimeoutMs: 2_000 }).callMaritaca;
    const error = await env.run(activity, request).then(
      () => undefined,
      (e: unknown) => e,
    );
    return { entries, heard, error };
  }

  const failed = (entries: LogEntry[]) => entries.filter((e) => e.message === 'Activity failed');

  test('an injected HTTP 500 is heard as one line and kept below WARN', async () => {
    fake.configure({ errorRate500: 1 });
    const { entries, heard, error } = await run('WARN', { attempt: 1 });
    expect(error).toBeInstanceOf(ApplicationFailure);
    expect(failed(entries)).toEqual([]);
    expect(heard).toHaveLength(1);
    expect(heard[0]).toMatchObject({
      requestId: 'pergunta-07',
      type: 'MaritacaServerError',
      status: 500,
      attempt: 1,
      maximumAttempts: 20,
      final: false,
    });
    expect(describeRetryableFailure(heard[0]!)).toBe('request pergunta-07: HTTP 500, retrying (attempt 2)');
  });

  test('at DEBUG the retried failure is there, with the request id and without a stack trace', async () => {
    fake.configure({ errorRate500: 1 });
    const { entries } = await run('DEBUG', { attempt: 3 });
    const [entry] = failed(entries);
    expect(entry).toBeDefined();
    expect(entry!.level).toBe('DEBUG');
    expect(entry!.meta).toMatchObject({
      requestId: 'pergunta-07',
      attempt: 3,
      error: { type: 'MaritacaServerError', status: 500 },
    });
    expect(printed(entry!)).not.toMatch(/\n\s+at /);
  });

  test("a 429 says when the batch calls again, from the server's Retry-After", async () => {
    fake.configure({ errorRate429: 1 });
    const { entries, heard } = await run('INFO');
    expect(failed(entries)).toEqual([]);
    expect(heard[0]).toMatchObject({
      type: 'MaritacaRateLimited',
      status: 429,
      retryInMs: 1000,
      final: false,
    });
    expect(describeRetryableFailure(heard[0]!)).toBe('request pergunta-07: 429, retrying in 1 s');
  });

  test('a connection that fails is retryable too', async () => {
    const { entries, heard } = await run('WARN', { baseURL: 'http://127.0.0.1:1' });
    expect(failed(entries)).toEqual([]);
    expect(heard[0]).toMatchObject({ type: 'MaritacaConnectionError', final: false });
    expect(describeRetryableFailure(heard[0]!)).toMatch(
      /^request pergunta-07: no answer \(.+\), retrying \(attempt 2\)$/,
    );
  });

  test('the last attempt stays a warning (the request fails for good), still without a stack', async () => {
    fake.configure({ errorRate500: 1 });
    const { entries, heard } = await run('WARN', { attempt: 5, maximumAttempts: 5 });
    const [entry] = failed(entries);
    expect(entry?.level).toBe('WARN');
    expect(printed(entry!)).not.toMatch(/\n\s+at /);
    expect(heard[0]).toMatchObject({ final: true });
    expect(describeRetryableFailure(heard[0]!)).toBe(
      'request pergunta-07: HTTP 500, giving up after 5 attempts',
    );
  });

  test('a refused key (not retryable) keeps its WARN and its stack trace, and is not heard as a retry', async () => {
    const { entries, heard } = await run('WARN', { apiKey: 'sk-wrong' });
    const [entry] = failed(entries);
    expect(entry?.level).toBe('WARN');
    expect((entry!.meta!.error as ApplicationFailure).type).toBe('MaritacaAuthenticationError');
    expect(printed(entry!)).toMatch(/\n\s+at /);
    expect(heard).toEqual([]);
  });

  test('an unknown error keeps its WARN and its stack trace', async () => {
    const boom = async () => {
      throw new Error('something unexpected');
    };
    const { entries, heard } = await run('WARN', { fn: boom });
    const [entry] = failed(entries);
    expect(entry?.level).toBe('WARN');
    expect(printed(entry!)).toMatch(/something unexpected\n\s+at /);
    expect(heard).toEqual([]);
  });

  test('a listener that throws does not cost the worker its log line', async () => {
    fake.configure({ errorRate500: 1 });
    const entries: LogEntry[] = [];
    const env = new MockActivityEnvironment(
      { attempt: 5, activityType: 'callMaritaca', retryPolicy: { maximumAttempts: 5 } },
      {
        logger: exported('WARN', (e) => entries.push(e), {
          onRetryableFailure: () => {
            throw new Error('listener bug');
          },
        }),
        interceptors: [requestLogAttributes],
      },
    );
    const activities = createActivities({ apiKey: KEY, baseURL: fake.url, requestTimeoutMs: 2_000 });
    await expect(env.run(activities.callMaritaca, request)).rejects.toBeInstanceOf(ApplicationFailure);
    expect(failed(entries).map((e) => e.level)).toEqual(['WARN']);
  });

  test('without the request-id interceptor the line names the activity instead', () => {
    const heard: RetryableFailure[] = [];
    const logger = createWorkerLogger('WARN', () => undefined, { onRetryableFailure: (f) => heard.push(f) });
    const error = ApplicationFailure.create({
      type: 'MaritacaServerError',
      message: '502 Bad gateway',
      details: [{ status: 502, attempt: 2 }],
    });
    logger.warn('Activity failed', { attempt: 2, activityId: '11', error });
    expect(heard.map(describeRetryableFailure)).toEqual(['activity 11: HTTP 502, retrying (attempt 3)']);
  });

  test('other entries pass through unchanged at their level', () => {
    const entries: LogEntry[] = [];
    const logger = createWorkerLogger('INFO', (e) => entries.push(e));
    logger.debug('hidden');
    logger.info('Worker state changed', { state: 'RUNNING' });
    logger.error('Activity failed', { error: new Error('x') });
    expect(entries.map((e) => [e.level, e.message, e.meta])).toEqual([
      ['INFO', 'Worker state changed', { state: 'RUNNING' }],
      ['ERROR', 'Activity failed', { error: expect.any(Error) }],
    ]);
  });
});
