import { BatchRequestFailedError } from '../../src';
import { questions, startTestContext, TEST_API_KEY, type TestContext } from '../helpers/context';
import { historyText } from '../helpers/history';

describe('the API key stays in the worker', () => {
  let ctx: TestContext;

  beforeAll(async () => {
    // The fake expects another key, so the worker's key is refused and every error path runs.
    ctx = await startTestContext({ apiKey: 'the-fake-wants-another-key' });
  });
  afterAll(async () => {
    await ctx?.close();
  });

  test('not in the history, the worker logs, nor the errors callers see', async () => {
    const reported = await ctx.batches.start(questions(2), { autoApproveBelow: 10, returnExceptions: true });
    const result = await reported.result();
    expect(result.results.every((r) => !r.ok)).toBe(true);

    const failing = await ctx.batches.start(questions(2), { autoApproveBelow: 10 });
    const error = (await failing.result().catch((e: unknown) => e)) as BatchRequestFailedError;
    expect(error).toBeInstanceOf(BatchRequestFailedError);

    const errorText = [
      error.message,
      String(error.cause),
      JSON.stringify(error, Object.getOwnPropertyNames(error)),
    ].join('\n');
    const histories =
      (await historyText(ctx.temporal, reported.batchId)) +
      (await historyText(ctx.temporal, failing.batchId));
    const logs = ctx.logs.join('\n');

    // Each channel did carry the failure, so the search below is meaningful.
    expect(errorText).toContain('Invalid API key');
    expect(histories).toContain('Invalid API key');
    expect(histories).toContain('MaritacaAuthenticationError');
    expect(logs).toContain('MaritacaAuthenticationError');
    for (const text of [errorText, histories, logs, JSON.stringify(result)]) {
      expect(text).not.toContain(TEST_API_KEY);
    }
  });
});
