import { formatBrl, type BatchProgress } from '../shared';

/**
 * Exit codes of every command, so scripts can tell the outcomes apart. Documented in the README;
 * never renumbered.
 */
export const ExitCodes = {
  /** Done; for a batch: every request succeeded. */
  ok: 0,
  /** Something went wrong: Temporal unreachable, unknown batch, a refused operation, a batch whose workflow failed. */
  error: 1,
  /** Input to fix: a bad file, flag, value or model name. */
  badInput: 2,
  /** The batch has not finished yet (`results` without `--wait`). */
  notFinished: 3,
  /** The batch ended, but not every request succeeded (failed requests; cancelled, rejected, expired or out of budget). */
  incomplete: 4,
} as const;

/** The exit code a batch that reached a final status deserves. */
export function exitCodeOf(progress: BatchProgress): number {
  if (progress.status === 'failed') return ExitCodes.error;
  if (progress.status === 'completed' && progress.failed === 0) return ExitCodes.ok;
  return ExitCodes.incomplete;
}

/**
 * What a batch waits for and the command that unblocks it, or null when it is simply working.
 * Shown by `status` and `status --watch`, so nobody watches a batch that waits for them.
 */
export function waitingHint(batchId: string, progress: BatchProgress): string | null {
  switch (progress.status) {
    case 'awaiting_approval':
      return `waiting for approval of ${brl(progress.estimate?.totalCost ?? null)}: maritaca-batch approve ${batchId} [--budget BRL] (or reject ${batchId})`;
    case 'awaiting_budget': {
      const b = progress.budget;
      const toFinish = b ? b.spent + b.reserved + b.restMaxCost : null;
      return `out of budget (${brl(b?.spent ?? progress.actualCost)} of ${brl(progress.approvedBudget)} spent): maritaca-batch approve ${batchId} --budget ${toFinish !== null ? toFinish.toFixed(4) : 'BRL'} to finish`;
    }
    case 'paused':
      return `paused: maritaca-batch resume ${batchId}`;
    case 'awaiting_credentials':
      return `Maritaca refused the key or account (${progress.credentialsError?.status ?? '?'}: ${progress.credentialsError?.message ?? 'no message'}): fix the worker's MARITACA_API_KEY or the account, then maritaca-batch resume ${batchId}`;
    case 'estimating':
      return 'estimating the cost';
    default:
      if (progress.waitingFor === 'rate_limit')
        return 'holding calls to stay within the per-minute rate limit';
      if (progress.waitingFor === 'retry_after') return 'holding calls after a 429, as Retry-After asks';
      if (progress.waitingFor === 'api_unavailable')
        return `Maritaca is unavailable (${progress.apiOutage?.lastError ?? 'calls failing'}): holding calls, next probe at ${progress.apiOutage?.nextProbeAt ?? 'soon'}`;
      if (progress.waitingFor === 'budget')
        return 'waiting for calls in flight to settle before spending more';
      return null;
  }
}

/** An error the CLI reports as one line with a chosen exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Statuses after which a batch changes no more. */
export { FINAL_STATUSES } from '../shared';

/** Formats BRL with enough decimals for the tiny amounts single calls cost. */
export const brl = formatBrl;

/** One plain line describing where a batch stands (pipes, logs, `status` without `--json`). */
export function progressLine(progress: BatchProgress): string {
  const parts = [
    `${progress.status}`,
    `${progress.completed}/${progress.total} done`,
    `${progress.inFlight} in flight`,
    `${progress.failed} failed`,
    `spent ${brl(progress.actualCost)}`,
  ];
  if (progress.approvedBudget !== null) parts.push(`approved ${brl(progress.approvedBudget)}`);
  if (progress.estimate) parts.push(`estimate ${brl(progress.estimate.totalCost)}`);
  return parts.join(', ');
}

/** Writes a JSON value as one line: the `--json` output of every command. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}
