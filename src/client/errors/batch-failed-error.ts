import { MaritacaBatchError } from '../../store/errors/maritaca-batch-error';

/** The batch workflow failed for a reason other than one request (e.g. invalid input, termination). */
export class BatchFailedError extends MaritacaBatchError {
  /** Id of the batch (its workflow id). */
  readonly batchId: string;

  constructor(batchId: string, message: string, cause?: unknown) {
    super(`Batch ${batchId} failed: ${message}`, { cause });
    this.batchId = batchId;
  }
}
