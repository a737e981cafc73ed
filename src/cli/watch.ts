import { SingleBar, Presets } from 'cli-progress';
import type { BatchHandle } from '../client';
import type { BatchProgress } from '../shared';
import { FINAL_STATUSES, brl, progressLine, waitingHint } from './output';

/** Longest wait between two reads of a batch that is not changing. */
const MAX_POLL_MS = 5_000;

/**
 * Wait before the next read of a batch's progress: `intervalMs` after a change, doubling (up to
 * 5 s, or `intervalMs` if longer) while nothing changes. Every query is a Temporal action, and a
 * batch waiting for a person or a long call changes rarely.
 */
export function nextPollDelay(previousMs: number, changed: boolean, intervalMs: number): number {
  if (changed) return intervalMs;
  return Math.min(Math.max(MAX_POLL_MS, intervalMs), previousMs * 2);
}

/** Options of {@link watchBatch}. */
export interface WatchOptions {
  /** Milliseconds between progress queries after a change (default 500); doubles, up to 5 s, while nothing changes. */
  intervalMs?: number;
  /** Draw a live bar (a terminal) or print a line per change (a pipe). Default: `process.stdout.isTTY`. */
  tty?: boolean;
  /** Where lines go (default the stream). */
  write?: (line: string) => void;
  /** Where the bar and the lines go (default stdout; `results --wait` uses stderr, as stdout carries the results). */
  stream?: NodeJS.WriteStream;
}

/** Requests per minute over the samples taken while running. */
function ratePerMinute(
  first: { at: number; completed: number } | null,
  now: BatchProgress,
  at: number,
): number {
  if (!first || at <= first.at) return 0;
  return ((now.completed - first.completed) * 60_000) / (at - first.at);
}

/**
 * Follows a batch until it reaches a final status: a live bar with counts, rate, ETA and
 * spend against the approved budget on a terminal; one plain line per change elsewhere.
 * Resolves with the last progress read.
 */
export async function watchBatch(handle: BatchHandle, options: WatchOptions = {}): Promise<BatchProgress> {
  const intervalMs = options.intervalMs ?? 500;
  const stream = options.stream ?? process.stdout;
  const tty = options.tty ?? Boolean(stream.isTTY);
  const write = options.write ?? ((line: string) => stream.write(`${line}\n`));
  let first: { at: number; completed: number } | null = null;
  let lastLine = '';
  let lastHint: string | null = null;
  let bar: SingleBar | undefined;
  let delayMs = intervalMs;
  let lastState = '';
  for (;;) {
    const progress = await handle.progress();
    const state = `${progress.status}|${progress.updatedAt}|${progress.completed}`;
    delayMs = nextPollDelay(delayMs, state !== lastState, intervalMs);
    lastState = state;
    const at = Date.now();
    if (progress.status === 'running' && first === null) first = { at, completed: progress.completed };
    const rate = ratePerMinute(first, progress, at);
    const budget = progress.approvedBudget ?? progress.estimate?.totalCost ?? null;
    const hint = waitingHint(handle.batchId, progress);
    if (hint !== lastHint && hint !== null) {
      // Said once per change, above the bar, so a batch waiting for someone never looks stuck.
      bar?.stop();
      bar = undefined;
      write(tty ? hint : `${new Date(at).toISOString()} ${hint}`);
    }
    lastHint = hint;
    if (tty) {
      const payload = {
        status: progress.status.padEnd(17),
        failed: progress.failed,
        inFlight: progress.inFlight,
        rate: rate.toFixed(0),
        spent: brl(progress.actualCost),
        budget: brl(budget),
      };
      if (!bar) {
        bar = new SingleBar(
          {
            format:
              '{status} {bar} {percentage}% | {value}/{total} done, {inFlight} in flight, {failed} failed | {rate}/min | ETA {eta_formatted} | {spent} of {budget}',
            hideCursor: true,
            etaBuffer: 50,
            stream,
          },
          Presets.shades_classic,
        );
        bar.start(progress.total, progress.completed, payload);
      } else {
        bar.update(progress.completed, payload);
      }
    } else {
      const line = progressLine(progress) + (rate > 0 ? `, ${rate.toFixed(0)}/min` : '');
      // Rate changes every sample; print only when the state itself changed.
      const key = progressLine(progress);
      if (key !== lastLine) {
        write(`${new Date(at).toISOString()} ${line}`);
        lastLine = key;
      }
    }
    if (FINAL_STATUSES.includes(progress.status)) {
      bar?.stop();
      return progress;
    }
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
}
