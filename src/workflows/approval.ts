import { condition, isCancellation } from '@temporalio/workflow';
import type { BatchOptions, BatchState } from '../shared';
import type { Reporter } from './reporting';

/** How the wait for an approval ended. */
export type ApprovalOutcome = 'approved' | 'rejected' | 'expired' | 'cancelled';

/**
 * Waits until the batch may run: an approval that arrived during the estimate, `autoApproveBelow`
 * when the estimate is under it, or a person's signal or update (within `approvalTimeout`, if
 * set). A rejection, the timeout or a cancellation ends the wait instead.
 */
export async function awaitApproval(
  state: BatchState,
  reporter: Reporter,
  options: BatchOptions,
  approvalTimeoutMs: number | undefined,
): Promise<ApprovalOutcome> {
  try {
    const { rejected, earlyApproval, estimate } = state.view;
    if (rejected) return 'rejected';
    if (earlyApproval) {
      state.approve(earlyApproval.budget ?? estimate!.totalCost, 'signal', earlyApproval.approvedBy);
      return 'approved';
    }
    if (options.autoApproveBelow !== undefined && estimate!.totalCost < options.autoApproveBelow) {
      state.approve(options.autoApproveBelow, 'auto', 'autoApproveBelow');
      return 'approved';
    }
    reporter.setStatus('awaiting_approval', 'approval');
    const decided = () => state.view.rejected || state.view.approvals.length > 0;
    if (approvalTimeoutMs === undefined) await condition(decided);
    else if (!(await condition(decided, approvalTimeoutMs, { summary: 'approval timeout' })))
      return 'expired';
    return state.view.rejected ? 'rejected' : 'approved';
  } catch (err) {
    if (isCancellation(err)) return 'cancelled';
    throw err;
  }
}
