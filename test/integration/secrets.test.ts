import { questions, startTestContext, TEST_API_KEY, type TestContext } from '../helpers/context';
import { historyText } from '../helpers/history';
import { waitFor } from '../helpers/wait';

describe('the API key stays in the worker', () => {
  let ctx: TestContext;

  beforeAll(async () => {
    // The fake expects another key, so the worker's key is refused and every error path runs.
    ctx = await startTestContext({ apiKey: 'the-fake-wants-another-key' });
  });
  afterAll(async () => {
    await ctx?.close();
  });

  test('not in the history, the worker logs, nor what callers see', async () => {
    // A refused key pauses the batch (awaiting_credentials) with Maritaca's message; cancelled.
    const handle = await ctx.batches.start(questions(2), { autoApproveBelow: 10, returnExceptions: true });
    const paused = await waitFor(
      () => handle.progress(),
      (p) => p.status === 'awaiting_credentials',
      { what: 'the batch to wait for credentials' },
    );
    await handle.cancel();
    const result = await handle.result();
    expect(result.status).toBe('cancelled');

    const seen = [JSON.stringify(paused), JSON.stringify(result)].join('\n');
    const histories = await historyText(ctx.temporal, handle.batchId);
    const logs = ctx.logs.join('\n');

    // Each channel did carry the failure, so the search below is meaningful.
    expect(seen).toContain('Invalid API key');
    expect(histories).toContain('Invalid API key');
    expect(histories).toContain('MaritacaAuthenticationError');
    expect(logs).toContain('MaritacaAuthenticationError');
    for (const text of [seen, histories, logs]) {
      expect(text).not.toContain(TEST_API_KEY);
    }
  });
});
