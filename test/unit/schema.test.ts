import { batchInputSchema, formatPath, parseDurationMs, validateWith } from '../../src/shared';

describe('input schema', () => {
  test('accepts a minimal batch and leaves ids to the workflow', () => {
    const result = validateWith(batchInputSchema, {
      requests: [{ messages: [{ role: 'user', content: 'oi' }] }],
    });
    expect(result.ok).toBe(true);
  });

  test('names every bad field by path', () => {
    const result = validateWith(batchInputSchema, {
      requests: [{ messages: [{ role: 'user', content: 1 }] }, { messages: [] }],
      options: { maxConcurrency: 1.5, retry: { backoffCoefficient: 0.5 } },
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.issues.map((i) => i.path).sort()).toEqual(
      [
        'options.maxConcurrency',
        'options.retry.backoffCoefficient',
        'requests[0].messages[0].content',
        'requests[1].messages',
      ].sort(),
    );
  });

  test('formats paths the way people write them', () => {
    expect(formatPath(['requests', 3, 'messages', 0, 'role'])).toBe('requests[3].messages[0].role');
    expect(formatPath([])).toBe('(input)');
  });

  test('parses durations', () => {
    expect(parseDurationMs('90s')).toBe(90_000);
    expect(parseDurationMs('15m')).toBe(900_000);
    expect(parseDurationMs('2h')).toBe(7_200_000);
    expect(parseDurationMs(250)).toBe(250);
    expect(parseDurationMs('soon')).toBeUndefined();
    expect(parseDurationMs(0)).toBeUndefined();
    expect(parseDurationMs(-5)).toBeUndefined();
  });
});
