const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  sec: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * Parses a duration given as milliseconds or as a string such as `"90s"`, `"15m"`, `"2h"`, `"7d"`.
 * Returns `undefined` for anything else, so callers can name the offending field.
 *
 * @example
 * parseDurationMs('15m') // => 900000
 */
export function parseDurationMs(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|d)?\s*$/.exec(value);
  if (!match) return undefined;
  const amount = Number(match[1]);
  const unitMs = UNIT_MS[match[2] ?? 'ms'] ?? 1;
  const ms = amount * unitMs;
  return ms > 0 ? ms : undefined;
}
