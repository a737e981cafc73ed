/** Per-minute limits of a Maritaca key, as the batch option `rateLimit` takes them. */
export interface RateLimits {
  /** Requests per minute. */
  rpm?: number;
  /** Input (prompt) tokens per minute. */
  inputTpm?: number;
  /** Output (completion) tokens per minute. */
  outputTpm?: number;
}

/** One call counted against the window: when it started and the tokens it may use. */
export interface WindowEntry {
  /** Request index, so the entry can be corrected once the call reports its usage. */
  index: number;
  /** Workflow time (ms) the call started. */
  at: number;
  inputTokens: number;
  outputTokens: number;
}

/** Length of the window: one minute. */
export const RATE_WINDOW_MS = 60_000;
/**
 * Extra time a start stays counted, because a call reaches Maritaca a little after the
 * workflow starts it; without it two starts 60 s apart can land in the same server minute.
 */
export const RATE_WINDOW_MARGIN_MS = 1_000;

/** Drops entries that no longer count at `now`. Mutates and returns `entries` (plain JSON state). */
export function pruneWindow(entries: WindowEntry[], now: number): WindowEntry[] {
  const horizon = now - RATE_WINDOW_MS - RATE_WINDOW_MARGIN_MS;
  let drop = 0;
  while (drop < entries.length && entries[drop]!.at <= horizon) drop++;
  if (drop > 0) entries.splice(0, drop);
  return entries;
}

/**
 * Milliseconds to wait before a call needing `inputTokens` and `outputTokens` fits every limit
 * (0 when it fits now). Entries must be in start order. A call larger than a whole limit on its
 * own is allowed once the window is empty, or it could never run.
 */
export function rateWaitMs(
  entries: readonly WindowEntry[],
  limits: RateLimits,
  now: number,
  inputTokens: number,
  outputTokens: number,
): number {
  const live = entries.filter((e) => e.at > now - RATE_WINDOW_MS - RATE_WINDOW_MARGIN_MS);
  if (live.length === 0) return 0;
  let wait = 0;
  const expiry = (e: WindowEntry) => e.at + RATE_WINDOW_MS + RATE_WINDOW_MARGIN_MS - now;
  // For each limit, find how many of the oldest entries must expire before the call fits.
  const need = (limit: number | undefined, amount: number, of: (e: WindowEntry) => number): void => {
    if (limit === undefined) return;
    let used = live.reduce((sum, e) => sum + of(e), 0);
    let i = 0;
    while (used + amount > limit && i < live.length) {
      used -= of(live[i]!);
      wait = Math.max(wait, expiry(live[i]!));
      i++;
    }
  };
  need(limits.rpm, 1, () => 1);
  need(limits.inputTpm, inputTokens, (e) => e.inputTokens);
  need(limits.outputTpm, outputTokens, (e) => e.outputTokens);
  return Math.max(0, wait);
}

/** Requests and tokens counted in the window at `now`. */
export function windowUsage(
  entries: readonly WindowEntry[],
  now: number,
): { requests: number; inputTokens: number; outputTokens: number } {
  let requests = 0;
  let inputTokens = 0;
  let outputTokens = 0;
  for (const e of entries) {
    if (e.at <= now - RATE_WINDOW_MS - RATE_WINDOW_MARGIN_MS) continue;
    requests++;
    inputTokens += e.inputTokens;
    outputTokens += e.outputTokens;
  }
  return { requests, inputTokens, outputTokens };
}

/**
 * Additive increase, multiplicative decrease of the concurrency window: halves on a 429,
 * grows by one per window's worth of successes, never above `max` nor below 1.
 */
export function adaptWindow(window: number, max: number, event: 'success' | 'rate_limited'): number {
  if (event === 'rate_limited') return Math.max(1, window / 2);
  return Math.min(max, window + 1 / Math.max(1, window));
}
