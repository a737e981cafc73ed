import type { RequestOutcome } from '../../shared';
import { MaritacaBatchError } from '../../store/errors/maritaca-batch-error';

/**
 * One request of a batch that failed after its retries. With `returnExceptions: true` the seed
 * helpers put one of these in the failed request's slot instead of a `ChatResult`.
 */
export class MaritacaRequestError extends MaritacaBatchError {
  /** Position of the request in the input. */
  readonly index: number;
  /** Id of the request. */
  readonly requestId: string;
  /** Failure type, one of `FailureTypes`' values. */
  readonly type: string;
  /** HTTP status Maritaca answered with, when there was one. */
  readonly status: number | undefined;
  /** Attempts made. */
  readonly attempts: number;

  constructor(outcome: Extract<RequestOutcome, { ok: false }>) {
    const status = outcome.error.status ? ` (HTTP ${outcome.error.status})` : '';
    super(
      `Request ${outcome.index} ("${outcome.id}") failed: ${outcome.error.type}${status}: ${outcome.error.message}`,
    );
    this.index = outcome.index;
    this.requestId = outcome.id;
    this.type = outcome.error.type;
    this.status = outcome.error.status;
    this.attempts = outcome.attempts;
  }
}
