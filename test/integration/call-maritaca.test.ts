import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import {
  FailureTypes,
  createActivities,
  retryAfterMs,
  type CallMaritacaInput,
  type CallMaritacaOutput,
} from '../../src';
import { startFakeMaritaca, type FakeMaritacaServer } from '../../src/testing/fake-maritaca';
import { waitFor } from '../helpers/wait';

const KEY = 'sk-activity-secret-777';

const request = (overrides: Partial<CallMaritacaInput> = {}): CallMaritacaInput => ({
  requestId: 'r1',
  model: 'sabia-4',
  messages: [{ role: 'user', content: 'Qual é a capital do Chile?' }],
  maxTokens: 100,
  ...overrides,
});

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

describe('callMaritaca against the fake server', () => {
  let fake: FakeMaritacaServer;

  beforeAll(async () => {
    fake = await startFakeMaritaca({ apiKey: KEY });
  });
  afterAll(async () => {
    await fake.close();
  });
  beforeEach(() => {
    fake.reset();
    fake.configure({
      errorRate500: null,
      errorRate429: null,
      hangRate: null,
      replyTokens: null,
      latencyMs: null,
    });
  });

  const activities = (apiKey = KEY, requestTimeoutMs = 5_000) =>
    createActivities({ apiKey, baseURL: fake.url, requestTimeoutMs });
  const env = () => new MockActivityEnvironment({ attempt: 3 });

  test('returns a ChatResult with usage, cost, the attempt number and the request id header', async () => {
    fake.configure({ replyTokens: 'max' });
    const output = (await env().run(activities().callMaritaca, request())) as CallMaritacaOutput;
    expect(output.attempt).toBe(3);
    expect(output.result!.generations[0]!.text).toContain('Qual é a capital do Chile?');
    expect(output.result!.generations[0]!.generationInfo.finishReason).toBe('length');
    const usage = output.result!.llmOutput.tokenUsage;
    expect(usage.completionTokens).toBe(100);
    expect(usage.totalTokens).toBe(usage.promptTokens + usage.completionTokens);
    expect(output.cost).toBeCloseTo((usage.promptTokens * 5 + 100 * 20) / 1e6, 12);
    expect(Object.keys(fake.stats().byRequestId)[0]).toMatch(/\/r1$/);
  });

  test('429 is retryable and carries Retry-After as the next retry delay', async () => {
    fake.configure({ errorRate429: 1, retryAfterSeconds: 7 });
    const failure = await failureOf(env().run(activities().callMaritaca, request()));
    expect(failure.type).toBe(FailureTypes.RateLimited);
    expect(failure.nonRetryable).toBe(false);
    expect(failure.nextRetryDelay).toBe(7000);
    expect(failure.details?.[0]).toEqual({ status: 429, attempt: 3, retryAfterMs: 7000 });
  });

  test('500 is retryable', async () => {
    fake.configure({ errorRate500: 1 });
    const failure = await failureOf(env().run(activities().callMaritaca, request()));
    expect(failure.type).toBe(FailureTypes.ServerError);
    expect(failure.nonRetryable).toBe(false);
  });

  test("422 is not retried and keeps the server's FastAPI detail", async () => {
    const failure = await failureOf(env().run(activities().callMaritaca, request({ messages: [] })));
    expect(failure.type).toBe(FailureTypes.BadRequest);
    expect(failure.nonRetryable).toBe(true);
    expect(failure.details?.[0]).toMatchObject({ status: 422 });
    expect(failure.message).toMatch(/messages/);
  });

  test('401 is not retried and the message never contains the key', async () => {
    const wrongKey = 'sk-wrong-key-that-must-not-leak';
    const failure = await failureOf(env().run(activities(wrongKey).callMaritaca, request()));
    expect(failure.type).toBe(FailureTypes.AuthenticationError);
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain('Invalid API key');
    expect(JSON.stringify({ message: failure.message, details: failure.details })).not.toContain(wrongKey);
  });

  test('a call that hangs past the timeout is a retryable connection failure', async () => {
    fake.configure({ hangRate: 1 });
    const failure = await failureOf(env().run(activities(KEY, 300).callMaritaca, request()));
    expect(failure.type).toBe(FailureTypes.ConnectionError);
    expect(failure.nonRetryable).toBe(false);
    // Under jest the abort error crosses a realm boundary and the SDK reports it as a connection error.
    expect(failure.message).toMatch(/timed out|Could not reach Maritaca/);
  });

  test('cancellation aborts the HTTP request', async () => {
    fake.configure({ hangRate: 1 });
    const mock = env();
    const running = mock.run(activities(KEY, 60_000).callMaritaca, request());
    await waitFor(
      async () => fake.stats().currentConcurrency,
      (n) => n === 1,
      { what: 'the call to arrive' },
    );
    mock.cancel();
    await expect(running).rejects.toBeInstanceOf(CancelledFailure);
    await waitFor(
      async () => fake.stats().currentConcurrency,
      (n) => n === 0,
      { what: 'the server to see the abort' },
    );
  });

  test('an unreachable server is a retryable connection failure', async () => {
    const lost = createActivities({ apiKey: KEY, baseURL: 'http://127.0.0.1:1', requestTimeoutMs: 2_000 });
    const failure = await failureOf(env().run(lost.callMaritaca, request()));
    expect(failure.type).toBe(FailureTypes.ConnectionError);
  });
});

describe('retryAfterMs', () => {
  test('reads seconds, HTTP dates and retry-after-ms', () => {
    expect(retryAfterMs(new Headers({ 'retry-after': '2' }))).toBe(2000);
    expect(retryAfterMs(new Headers({ 'retry-after-ms': '150' }))).toBe(150);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs(new Headers({ 'retry-after': 'Thu, 01 Jan 2026 00:00:05 GMT' }), now)).toBe(5000);
    expect(retryAfterMs(new Headers({ 'retry-after': 'whenever' }))).toBeUndefined();
    expect(retryAfterMs(undefined)).toBeUndefined();
  });
});
