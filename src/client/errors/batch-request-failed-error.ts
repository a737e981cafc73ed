import type { RequestError, ResultsRef } from '../../shared';
import { MaritacaBatchError } from '../../store/errors/maritaca-batch-error';

/**
 * A request exhausted its retries while `returnExceptions` was false, so the batch failed.
 * Carries which request failed and why.
 */
export class BatchRequestFailedError extends MaritacaBatchError {
  /** Id of the request that failed. */
  readonly requestId: string;
  /** Its position in the input. */
  readonly index: number;
  /** Failure type, e.g. `MaritacaAuthenticationError`. */
  readonly type: string;
  /** HTTP status Maritaca answered with, when there was one. */
  readonly status: number | undefined;
  /** Attempts made. */
  readonly attempts: number;
  /** Where the outcomes recorded before the failure are, for a batch that kept them in the store. */
  readonly resultsRef: ResultsRef | undefined;

  constructor(
    message: string,
    details: { id: string; index: number; error: RequestError; attempts: number; resultsRef?: ResultsRef },
    cause?: unknown,
  ) {
    super(message, { cause });
    this.requestId = details.id;
    this.index = details.index;
    this.type = details.error.type;
    this.status = details.error.status;
    this.attempts = details.attempts;
    this.resultsRef = details.resultsRef;
  }
}
