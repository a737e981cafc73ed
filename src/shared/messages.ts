import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { MessageNames } from './constants';
import type {
  ApprovalRecord,
  ApproveBudgetUpdate,
  ApproveSignal,
  BatchEstimate,
  BatchProgress,
  CompletionsPage,
  RejectSignal,
} from './types';

/** Approves the batch's budget; `budget` defaults to the estimate's total. */
export const approveSignal = defineSignal<[ApproveSignal?]>(MessageNames.approve);
/** Rejects the batch before it runs. */
export const rejectSignal = defineSignal<[RejectSignal?]>(MessageNames.reject);
/** Where the batch stands. */
export const progressQuery = defineQuery<BatchProgress>(MessageNames.progress);
/** The cost estimate, or `null` while it is being computed. */
export const estimateQuery = defineQuery<BatchEstimate | null>(MessageNames.estimate);
/**
 * Outcomes in the order requests finished, from position `from` on (at most `limit`, default 500):
 * lets a client report each finished request exactly once without holding the whole batch.
 */
export const completionsQuery = defineQuery<CompletionsPage, [{ from: number; limit?: number }]>(
  MessageNames.completions,
);

/**
 * Approves a budget and answers with the approval record; its validator refuses, with a reason,
 * when the batch is not waiting for approval or budget, or the budget is not a positive number,
 * is below what was spent, or would not let a batch waiting for budget go on.
 */
export const approveBudgetUpdate = defineUpdate<ApprovalRecord, [ApproveBudgetUpdate]>(
  MessageNames.approveBudget,
);
/** Changes `maxConcurrency` while the batch runs; answers with the new cap. */
export const setConcurrencyUpdate = defineUpdate<number, [number]>(MessageNames.setConcurrency);
/** Stops starting new calls (calls in flight finish). */
export const pauseSignal = defineSignal(MessageNames.pause);
/** Starts calls again after `pause`. */
export const resumeSignal = defineSignal(MessageNames.resume);
