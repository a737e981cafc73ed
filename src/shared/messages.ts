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

/**
 * What each signal, update and query does and what it takes, for people who send them by hand:
 * the Temporal UI's signal, update and query dialogs (and `__temporal_workflow_metadata`) show
 * these, so a payload can be written without opening the README.
 */
export const MessageDescriptions: Record<keyof typeof MessageNames, string> = {
  approve:
    'Approve the budget. Payload (all optional): {"budget": <BRL, default the estimate; while awaiting_budget, what finishing needs at worst>, "approvedBy": "<name>"}. An empty payload approves the estimate.',
  reject:
    'Reject the batch. Payload (optional): {"reason": "<text>"}. Before it runs the batch ends as rejected; while awaiting_budget, as budget_exhausted with the results so far.',
  pause: 'Stop starting Maritaca calls; calls in flight finish. No payload. Send resume to go on.',
  resume:
    "Start Maritaca calls again after pause, or after Maritaca refused the key or account (awaiting_credentials) and the worker's key was fixed. No payload.",
  approveBudget:
    'Approve a budget and get the approval record back, or the reason it is refused. Payload: {"budget": <BRL, required>, "approvedBy": "<name>"}. Refused when the batch waits for no approval, or the budget is not positive, is below what was spent, or (while awaiting_budget) is not above the current budget.',
  setConcurrency:
    'Change how many Maritaca calls may run at once, effective now. Payload: a number from 1 to 1000, e.g. 10. Returns the new limit.',
  progress:
    'Where the batch stands: status, succeeded/failed/in flight/pending counts, estimate, approved budget, spend in BRL, approvals and what it waits for. No arguments.',
  estimate:
    'The cost estimate in BRL (tokens, input and output cost, totalCost, worst case maxCost), or null while it is computed. No arguments.',
  completions:
    'Outcomes in the order requests finished. Argument: {"from": <position, 0 first>, "limit": <at most, default 500>}. Returns {total, completed, nextFrom, status, outcomes}.',
};
