import { MaritacaBatchError } from '../../store/errors/maritaca-batch-error';

/**
 * A batch was started with the id of a batch that exists (running, or ended and `rerun` not
 * asked for): batch ids name one batch for good, so results and approvals are never mixed up.
 */
export class BatchIdInUseError extends MaritacaBatchError {
  /** The id asked for. */
  readonly batchId: string;
  /** Whether the batch holding the id is still running. */
  readonly running: boolean;

  constructor(batchId: string, running: boolean, cause?: unknown) {
    super(
      `batch id "${batchId}" is already used by a ${running ? 'running' : 'finished'} batch: choose another id` +
        `, or re-send its failed requests with retry-failed ${batchId}` +
        (running ? '' : ' (or start it again under the same id with rerun)'),
      { cause },
    );
    this.batchId = batchId;
    this.running = running;
  }
}
