import { MaritacaBatchError } from '../../store/errors/maritaca-batch-error';

/**
 * The batch refused an update (`approveBudget`, `setConcurrency`): its validator said why,
 * and nothing changed.
 */
export class BatchUpdateRefusedError extends MaritacaBatchError {
  /** Id of the batch. */
  readonly batchId: string;
  /** The update that was refused. */
  readonly update: string;
  /** The batch's own reason. */
  readonly reason: string;

  constructor(batchId: string, update: string, reason: string, cause?: unknown) {
    super(`Batch ${batchId} refused ${update}: ${reason}`, { cause });
    this.batchId = batchId;
    this.update = update;
    this.reason = reason;
  }
}
