import { describeIssues, type InputIssue } from '../../shared';
import { MaritacaBatchError } from '../../store/errors/maritaca-batch-error';

/**
 * The batch input (or a signal payload) broke the schema. Raised before anything is started or
 * sent; `issues` names every bad field, e.g. `requests[3].messages[0].role`.
 */
export class InvalidBatchInputError extends MaritacaBatchError {
  /** Every problem found, by field path. */
  readonly issues: readonly InputIssue[];

  constructor(issues: readonly InputIssue[], what = 'batch input') {
    super(`Invalid ${what}: ${describeIssues(issues)}`);
    this.issues = issues;
  }
}
