import { MaritacaBatchError } from './maritaca-batch-error';

/** One problem found in a JSONL batch file. */
export interface BatchFileProblem {
  /** 1-based physical line of the file; 0 when the problem is about the whole file (e.g. it is empty). */
  readonly line: number;
  /** The bad field in the file's own terms, e.g. `body.messages[0].role` or `maxTokens`. */
  readonly field?: string;
  /** What is wrong. */
  readonly message: string;
}

/** Formats one problem as `line 12: body.max_tokens: must be ...`. */
function formatProblem(problem: BatchFileProblem): string {
  const where = problem.line > 0 ? `line ${problem.line}: ` : '';
  const field = problem.field ? `${problem.field}: ` : '';
  return `${where}${field}${problem.message}`;
}

/**
 * A JSONL batch file was refused whole. Nothing of it is used: a batch that silently drops its
 * bad lines would be paid for and still come back incomplete.
 *
 * `problems` holds the first problems found (capped, so a file with a million bad lines does not
 * make a million-line message); `totalProblems` counts them all.
 */
export class InvalidBatchFileError extends MaritacaBatchError {
  /** The first problems found, in line order. */
  readonly problems: readonly BatchFileProblem[];
  /** How many problems were found in all, including those left out of `problems`. */
  readonly totalProblems: number;
  /** True when `problems` leaves some out. */
  readonly truncated: boolean;
  /** The file's path, when the file was read from disk. */
  readonly file: string | undefined;

  constructor(problems: readonly BatchFileProblem[], totalProblems = problems.length, file?: string) {
    const total = Math.max(totalProblems, problems.length);
    const left = total - problems.length;
    const lines = [
      `Invalid batch file${file === undefined ? '' : ` ${JSON.stringify(file)}`} (${total} ${
        total === 1 ? 'problem' : 'problems'
      }):`,
      ...problems.map(formatProblem),
    ];
    if (left > 0) lines.push(`… and ${left} more ${left === 1 ? 'problem' : 'problems'}`);
    super(lines.join('\n'));
    this.problems = problems;
    this.totalProblems = total;
    this.truncated = left > 0;
    this.file = file;
  }
}
