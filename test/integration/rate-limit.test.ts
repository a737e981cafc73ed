import { questions, startTestContext, type TestContext } from '../helpers/context';
import { waitFor } from '../helpers/wait';

describe('rate limits', () => {
  let ctx: TestContext;

  beforeAll(async () => {
    ctx = await startTestContext({ rpm: 60 });
  });
  afterAll(async () => {
    await ctx?.close();
  });

  test('with the key limited to 60 RPM and rateLimit.rpm 60, no 429 ever comes back', async () => {
    const handle = await ctx.batches.start(questions(66), {
      maxConcurrency: 20,
      autoApproveBelow: 100,
      rateLimit: { rpm: 60 },
    });
    const held = await waitFor(
      () => handle.progress(),
      (p) => p.waitingFor === 'rate_limit',
      {
        what: 'the rate window to hold',
        timeoutMs: 60_000,
      },
    );
    expect(held.completed + held.inFlight).toBe(60);
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(result.results.every((r) => r.ok && r.attempts === 1)).toBe(true);
    const stats = ctx.fake.stats();
    expect(stats.byStatus['429']).toBeUndefined();
    expect(stats.totalRequests).toBe(66);
    expect((await handle.progress()).rateLimitedResponses).toBe(0);
  }, 180_000);
});
