import { FINAL_STATUSES } from './constants';
import type { BatchProgress, RequestError, WaitingFor } from './types';

const WAITING_TEXT: Record<Exclude<WaitingFor, null>, string> = {
  approval: 'a budget approval (`approve` signal or `approveBudget` update)',
  budget:
    'more budget: the next call does not fit in what is left (`approveBudget` to go on, `reject` to stop)',
  rate_limit: "the key's per-minute limit",
  retry_after: "Maritaca's Retry-After after a 429",
  pause: '`resume` (paused)',
  credentials: "a working key: Maritaca refused the key or account; fix the worker's key, then `resume`",
  api_unavailable: 'Maritaca to come back: no calls but one probe at growing intervals',
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

/** The longest error message the details quote: enough to recognise it, short enough to read. */
const ERROR_TEXT_MAX = 200;

/**
 * Escapes what a markdown renderer would read as formatting (the UI typesets `$...$` as math, and
 * error texts may hold `*`, `_` or backticks), so quoted text shows as written.
 */
export function markdownText(text: string): string {
  return text.replace(/[\\`*_$[\]<>|~#]/g, '\\$&');
}

/** One line naming a request's error: `MaritacaAuthenticationError (HTTP 401): message`. */
export function describeRequestError(error: RequestError): string {
  return `${error.type}${error.status !== undefined ? ` (HTTP ${error.status})` : ''}: ${error.message}`;
}

/** What the details say of how a batch ended, after its status. */
function endingLine(progress: BatchProgress, lastError: string | null): string {
  const { status, total, succeeded, failed } = progress;
  const quoted =
    lastError === null
      ? ''
      : markdownText(
          lastError.length > ERROR_TEXT_MAX ? `${lastError.slice(0, ERROR_TEXT_MAX)}…` : lastError,
        );
  const cause = quoted ? ` (last error: ${quoted})` : '';
  const notRun = total - succeeded - failed;
  switch (status) {
    case 'completed':
      if (total > 0 && failed === total) return `**All ${total} requests failed**${cause}`;
      if (failed > 0) return `**${failed} of ${total} requests failed**${cause}`;
      return `**All ${total} requests succeeded**`;
    case 'failed':
      return `**Failed:** ${quoted || 'the batch stopped with an error'}`;
    case 'rejected':
      return `**Rejected**${progress.rejectionReason ? `: ${markdownText(progress.rejectionReason)}` : ''}; nothing was sent to Maritaca`;
    case 'expired':
      return '**Expired:** no approval arrived within `approvalTimeout`; nothing was sent to Maritaca';
    case 'cancelled':
      return `**Cancelled:** ${notRun} request(s) never ran${failed > 0 ? `; ${failed} failed${cause}` : ''}`;
    case 'budget_exhausted':
      return `**Budget exhausted:** ${notRun} request(s) never ran${failed > 0 ? `; ${failed} failed${cause}` : ''}`;
    default:
      return '';
  }
}

/**
 * The markdown the Temporal UI shows as a batch's current details: status, progress bar,
 * failures, spend against budget and estimate, throughput, and what it waits for. Once the batch
 * has ended (a {@link FINAL_STATUSES} status) it says how: how many requests succeeded, failed
 * or never ran, with `lastError` quoted, so a closed batch whose every request failed says so.
 */
export function renderCurrentDetails(
  progress: BatchProgress,
  requestsPerMinute: number | null,
  lastError: string | null = null,
): string {
  const ended = FINAL_STATUSES.includes(progress.status);
  const percent = progress.total === 0 ? 100 : Math.floor((100 * progress.completed) / progress.total);
  const notRun = progress.total - progress.completed - progress.inFlight;
  const counts = ended
    ? `${progress.succeeded} succeeded · ${progress.failed} failed${notRun > 0 ? ` · ${notRun} never ran` : ''}`
    : `${progress.inFlight} in flight · ${progress.failed} failed`;
  const lines = [`**Status:** ${progress.status}`];
  if (ended) lines.push(endingLine(progress, lastError));
  lines.push(
    `**Progress:** \`${textBar(progress.completed, progress.total)}\` ${progress.completed}/${progress.total} (${percent}%) · ${counts}`,
    `**Cost:** spent ${markdownBrl(progress.actualCost)} · approved ${markdownBrl(progress.approvedBudget)} · estimate ${markdownBrl(progress.estimate?.totalCost)} (at most ${markdownBrl(progress.estimate?.maxCost)})`,
  );
  if (requestsPerMinute !== null) {
    lines.push(
      ended
        ? `**Rate:** ${requestsPerMinute.toFixed(0)} requests/min on average`
        : `**Rate:** ${requestsPerMinute.toFixed(0)} requests/min · concurrency ${progress.concurrency.current}/${progress.concurrency.max}`,
    );
  }
  if (progress.waitingFor && !ended) lines.push(`**Waiting for:** ${WAITING_TEXT[progress.waitingFor]}`);
  const said =
    progress.credentialsError ?? (progress.apiOutage ? { message: progress.apiOutage.lastError } : null);
  if (said && !ended) {
    const status = 'status' in said && said.status !== undefined ? ` (HTTP ${said.status})` : '';
    lines.push(`**Maritaca said${status}:** ${markdownText(said.message.slice(0, ERROR_TEXT_MAX))}`);
  }
  return lines.join('\n\n');
}
