import { defineQuery, defineSignal } from '@temporalio/workflow';
import { MessageNames } from './constants';
import type { ApproveSignal, BatchEstimate, BatchProgress, CompletionsPage, RejectSignal } from './types';

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
