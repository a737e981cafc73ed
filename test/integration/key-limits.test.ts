import { questions, startTestContext, type TestContext } from '../helpers/context';

/**
 * A key's declared limit is shared by every batch on it, through the key's limiter workflow
 * (MARITACA_RATE_LIMIT on the workers), not planned by each batch as if alone.
 */
describe('one key, many batches', () => {
  let ctx: TestContext;

  beforeAll(async () => {
    ctx = await startTestContext({ latencyMs: 50, rpm: 240 }, { keyLimits: { rpm: 240 } });
  });
  afterAll(async () => {
    await ctx?.close();
  });

  test(
    'three concurrent batches on a key declared at 240 RPM draw no 429 and finish within 10% of each other',
    async () => {
      const started = Date.now();
      const handles = await Promise.all(
        ['a', 'b', 'c'].map((name) =>
          ctx.batches.start(
            questions(120).map((q) => ({ ...q, id: `${name}-${q.id}` })),
            { maxConcurrency: 10, autoApproveBelow: 100 },
          ),
        ),
      );
      const finished = await Promise.all(
        handles.map(async (handle) => {
          const result = await handle.result();
          return { result, seconds: (Date.now() - started) / 1000 };
        }),
      );
      const stats = ctx.fake.stats();
      const times = finished.map((f) => f.seconds);
      console.log(
        `key limits: 3 × 120 requests on 240 RPM finished after ${times.map((t) => t.toFixed(1)).join(', ')} s; ` +
          `429s: ${stats.byStatus['429'] ?? 0}`,
      );
      for (const { result } of finished) {
        expect(result.status).toBe('completed');
        expect(result.results.every((r) => r.ok)).toBe(true);
        expect(result.results).toHaveLength(120);
      }
      expect(stats.byStatus['429'] ?? 0).toBe(0);
      expect(stats.byStatus['200']).toBe(360);
      // 360 requests on 240 a minute: the last third waits for the first minute to pass.
      expect(Math.min(...times)).toBeGreaterThan(55);
      expect(Math.max(...times)).toBeLessThanOrEqual(1.1 * Math.min(...times));
    },
    4 * 60_000,
  );
});
