import type { BatchProgress, WaitingFor } from './types';

const WAITING_TEXT: Record<Exclude<WaitingFor, null>, string> = {
  approval: 'a budget approval (`approve` signal or `approveBudget` update)',
  budget:
    'more budget: the next call does not fit in what is left (`approveBudget` to go on, `reject` to stop)',
  rate_limit: "the key's per-minute limit",
  retry_after: "Maritaca's Retry-After after a 429",
  pause: '`resume` (paused)',
};

/** `R$ 0.001234` for small amounts, `R$ 12.34` for larger ones. */
export function formatBrl(amount: number | null | undefined): string {
  if (amount === null || amount === undefined) return '-';
  return `R$ ${amount < 1 ? amount.toFixed(6) : amount.toFixed(2)}`;
}

/**
 * {@link formatBrl} for markdown: the Temporal UI reads `$...$` as math, so the `$` is escaped.
 */
export function markdownBrl(amount: number | null | undefined): string {
  return formatBrl(amount).replace('$', '\\$');
}

/** A 20-cell text progress bar, e.g. `██████░░░░░░░░░░░░░░`. */
export function textBar(done: number, total: number, width = 20): string {
  const filled = total === 0 ? width : Math.min(width, Math.round((done / total) * width));
  return '█'.repeat(filled) + '░'.repeat(width - filled);
}

/**
 * The markdown the Temporal UI shows as a batch's current details: status, progress bar,
 * failures, spend against budget and estimate, throughput, and what it waits for.
 */
export function renderCurrentDetails(progress: BatchProgress, requestsPerMinute: number | null): string {
  const percent = progress.total === 0 ? 100 : Math.floor((100 * progress.completed) / progress.total);
  const lines = [
    `**Status:** ${progress.status}`,
    `**Progress:** \`${textBar(progress.completed, progress.total)}\` ${progress.completed}/${progress.total} (${percent}%) · ${progress.inFlight} in flight · ${progress.failed} failed`,
    `**Cost:** spent ${markdownBrl(progress.actualCost)} · approved ${markdownBrl(progress.approvedBudget)} · estimate ${markdownBrl(progress.estimate?.totalCost)} (at most ${markdownBrl(progress.estimate?.maxCost)})`,
  ];
  if (requestsPerMinute !== null) {
    lines.push(
      `**Rate:** ${requestsPerMinute.toFixed(0)} requests/min · concurrency ${progress.concurrency.current}/${progress.concurrency.max}`,
    );
  }
  if (progress.waitingFor) lines.push(`**Waiting for:** ${WAITING_TEXT[progress.waitingFor]}`);
  return lines.join('\n\n');
}
