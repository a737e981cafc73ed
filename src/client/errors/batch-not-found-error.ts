import { MaritacaBatchError } from '../../store/errors/maritaca-batch-error';

/** No batch with this id exists in the namespace. */
export class BatchNotFoundError extends MaritacaBatchError {
  /** The id that was looked up. */
  readonly batchId: string;

  constructor(batchId: string, cause?: unknown) {
    super(`No batch with id "${batchId}" was found`, { cause });
    this.batchId = batchId;
  }
}
