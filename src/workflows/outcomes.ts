import {
  describeRequestError,
  type CompletionsPage,
  type RequestError,
  type RequestOutcome,
} from '../shared';

/**
 * Where a batch's outcomes are held in the workflow: all of them, in memory and in the history,
 * for inline batches; none for stored ones (their outcomes live in the batch store, written by
 * the activities). Also remembers the last failure, for the details a closed batch shows.
 */
export class OutcomeBook {
  private readonly outcomes: (RequestOutcome | null)[];
  /** Indices in the order their requests finished (inline batches), so clients can follow completions. */
  private readonly completionOrder: number[] = [];
  private lastFailure: RequestError | null = null;

  constructor(
    /** Outcomes are kept off the history, in the batch store. */
    public stored: boolean,
    total: number,
  ) {
    this.outcomes = stored ? [] : new Array<RequestOutcome | null>(total).fill(null);
  }

  /** Keeps an outcome of an inline batch (stored batches' outcomes are in the store already). */
  keep(outcome: RequestOutcome): void {
    if (!outcome.ok) this.lastFailure = outcome.error;
    if (this.stored) return;
    this.outcomes[outcome.index] = outcome;
    this.completionOrder.push(outcome.index);
  }

  /** The failure seen last in this run, as one line, or null. */
  lastError(): string | null {
    return this.lastFailure ? describeRequestError(this.lastFailure) : null;
  }

  /** Every outcome held, in input order. */
  all(): RequestOutcome[] {
    return this.outcomes.filter((o): o is RequestOutcome => o !== null);
  }

  /** A page of the `completions` query (without its status); `completed` counts what the batch finished. */
  completions(
    from: number,
    limit: number | undefined,
    total: number,
    completed: number,
  ): Omit<CompletionsPage, 'status'> {
    // Stored batches hold no outcomes in memory: counts only; read the outcomes from the store.
    if (this.stored) return { total, completed, nextFrom: completed, outcomes: [] };
    const start = Math.max(0, Math.floor(from));
    const end = Math.min(this.completionOrder.length, start + Math.max(1, Math.min(limit ?? 500, 5000)));
    const page = this.completionOrder.slice(start, end).map((index) => this.outcomes[index]!);
    return { total, completed: this.completionOrder.length, nextFrom: start + page.length, outcomes: page };
  }
}
