/**
 * The orchestration's bill beside the model's: the estimate says how many Temporal actions a
 * batch should take, and `temporalActions()` counts those it took (history of every run plus
 * the heartbeats its calls reported).
 */
import { questions, startTestContext, type TestContext } from '../helpers/context';

describe('Temporal actions of a batch', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await startTestContext({ latencyMs: 5 });
  });
  afterAll(async () => {
    await ctx?.close();
  });

  test('about one action per request, as estimated, priced at the configured rate', async () => {
    const handle = await ctx.batches.start(questions(30), {
      maxConcurrency: 5,
      autoApproveBelow: 10,
      temporalActionPrice: 25,
      // One activity per request, the estimate's figure (faster calls share activities: fewer).
      callsPerActivity: 1,
    });
    const result = await handle.result();
    expect(result.status).toBe('completed');
    const expected = result.estimate!.temporalActions!;
    const used = await handle.temporalActions(25);
    console.log(
      `temporal-actions: expected ${expected.total}, used ${used.total}: ${JSON.stringify(used.byType)}`,
    );
    expect(expected.usdPerMillion).toBe(25);
    expect(used.byType.workflow_started).toBe(1);
    // One activity per request, plus the estimate, the page load, the results location (answers
    // are kept there as receipts) and the first lease from the key's limiter (none declared).
    expect(used.byType.activity_scheduled).toBe(30 + 4);
    expect(used.byType.signal ?? 0).toBe(0);
    expect(used.total / 30).toBeLessThan(1.5);
    expect(Math.abs(used.total - expected.total)).toBeLessThanOrEqual(5);
    expect(used.costUsd).toBeCloseTo((used.total * 25) / 1e6, 9);
  });

  test('calls longer than the heartbeat interval add the heartbeats they sent', async () => {
    ctx.fake.configure({ latencyMs: 2_500 });
    try {
      const handle = await ctx.batches.start(questions(3), {
        maxConcurrency: 3,
        autoApproveBelow: 10,
        heartbeatInterval: '1s',
      });
      const result = await handle.result();
      expect(result.heartbeats).toBeGreaterThanOrEqual(3 * 2);
      const used = await handle.temporalActions();
      expect(used.byType.heartbeat).toBe(result.heartbeats);
    } finally {
      ctx.fake.configure({ latencyMs: 5 });
    }
  });
});
