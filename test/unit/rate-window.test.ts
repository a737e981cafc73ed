import { adaptWindow, pruneWindow, rateWaitMs, windowUsage, type WindowEntry } from '../../src/shared';

const entry = (index: number, at: number, inputTokens = 10, outputTokens = 100): WindowEntry => ({
  index,
  at,
  inputTokens,
  outputTokens,
});

describe('the per-minute window', () => {
  test('lets calls through until the rpm is used, then waits for the oldest to leave the window', () => {
    const entries = [entry(0, 0), entry(1, 10_000), entry(2, 20_000)];
    expect(rateWaitMs(entries, { rpm: 4 }, 30_000, 10, 100)).toBe(0);
    // Full at 3: the call waits until the entry started at 0 stops counting (60 s + 1 s margin).
    expect(rateWaitMs(entries, { rpm: 3 }, 30_000, 10, 100)).toBe(31_000);
    expect(rateWaitMs(entries, { rpm: 3 }, 61_001, 10, 100)).toBe(0);
  });

  test('counts tokens: a call waits until enough input or output tokens have left the window', () => {
    const entries = [entry(0, 0, 500, 1000), entry(1, 5_000, 500, 1000), entry(2, 10_000, 500, 1000)];
    expect(rateWaitMs(entries, { outputTpm: 4000 }, 20_000, 10, 1000)).toBe(0);
    // 3000 used + 2000 needed > 4000: the first entry must leave.
    expect(rateWaitMs(entries, { outputTpm: 4000 }, 20_000, 10, 2000)).toBe(41_000);
    // 1500 used + 1000 needed > 1200: all three must leave (the last expiry counts).
    expect(rateWaitMs(entries, { inputTpm: 1200 }, 20_000, 1000, 0)).toBe(51_000);
    expect(rateWaitMs(entries, { inputTpm: 2000 }, 20_000, 1000, 0)).toBe(41_000);
    expect(rateWaitMs(entries, { rpm: 10, inputTpm: 10_000, outputTpm: 3500 }, 20_000, 0, 600)).toBe(41_000);
  });

  test('a call larger than a limit runs once the window is empty', () => {
    expect(rateWaitMs([], { outputTpm: 100 }, 0, 0, 5000)).toBe(0);
    expect(rateWaitMs([entry(0, 0)], { outputTpm: 100 }, 1000, 0, 5000)).toBe(60_000);
  });

  test('prunes and reports usage', () => {
    const entries = [entry(0, 0), entry(1, 30_000), entry(2, 59_000)];
    expect(windowUsage(entries, 61_500)).toEqual({ requests: 2, inputTokens: 20, outputTokens: 200 });
    pruneWindow(entries, 61_500);
    expect(entries.map((e) => e.index)).toEqual([1, 2]);
  });
});

describe('AIMD concurrency', () => {
  test('halves on a 429, never below 1, and recovers by about one per window of successes', () => {
    let w = 8;
    w = adaptWindow(w, 8, 'rate_limited');
    expect(w).toBe(4);
    expect(adaptWindow(1, 8, 'rate_limited')).toBe(1);
    for (let i = 0; i < 4; i++) w = adaptWindow(w, 8, 'success');
    expect(w).toBeGreaterThan(4.9);
    expect(w).toBeLessThan(5.1);
    for (let i = 0; i < 100; i++) w = adaptWindow(w, 8, 'success');
    expect(w).toBe(8);
  });
});
