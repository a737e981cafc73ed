import { formatBrl, type BatchProgress } from '../shared';

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
