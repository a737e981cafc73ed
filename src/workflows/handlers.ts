import { log, setHandler } from '@temporalio/workflow';
import {
  COST_EPSILON,
  MessageDescriptions,
  approveBudgetSchema,
  approveBudgetUpdate,
  approveSchema,
  approveSignal,
  completionsQuery,
  concurrencySchema,
  describeIssues,
  estimateQuery,
  pauseSignal,
  progressQuery,
  rejectSignal,
  resumeSignal,
  setConcurrencyUpdate,
  validateWith,
  type BatchState,
  type CompletionsPage,
} from '../shared';
import type { OutcomeBook } from './outcomes';
import type { Reporter } from './reporting';

/**
 * Whether an `approve` payload carries nothing: absent, `null`, or a blank string (what a form
 * left empty may send). Such a signal approves the estimate.
 */
function isEmptyPayload(payload: unknown): boolean {
  return payload === undefined || payload === null || (typeof payload === 'string' && payload.trim() === '');
}

/** Registers the batch's queries, signals and updates; each one changes the state through its owner. */
export function registerHandlers(
  state: BatchState,
  reporter: Reporter,
  book: OutcomeBook,
  total: number,
): void {
  const waitingForApproval = (): boolean =>
    state.view.status === 'awaiting_approval' || state.view.status === 'awaiting_budget';

  setHandler(progressQuery, () => reporter.progress(), { description: MessageDescriptions.progress });
  setHandler(estimateQuery, () => state.view.estimate, { description: MessageDescriptions.estimate });
  setHandler(
    completionsQuery,
    ({ from, limit }): CompletionsPage => ({
      ...book.completions(from, limit, total, state.view.succeeded + state.view.failed),
      status: state.view.status,
    }),
    { description: MessageDescriptions.completions },
  );

  setHandler(
    approveSignal,
    (payload) => {
      // A person sending `approve` from the UI may type no data at all: that approves the estimate.
      const parsed = validateWith(approveSchema, isEmptyPayload(payload) ? {} : payload);
      if (!parsed.ok) {
        log.warn('Ignoring approve signal with invalid payload', { issues: describeIssues(parsed.issues) });
        return;
      }
      const { budget, approvedBy } = parsed.value;
      const { status, rejected, estimate } = state.view;
      if (rejected) return;
      if (status === 'estimating') state.approveEarly(parsed.value);
      else if (status === 'awaiting_approval')
        state.approve(budget ?? estimate!.totalCost, 'signal', approvedBy);
      else if (status === 'awaiting_budget') {
        const next = budget ?? state.ledger.neededToFinish;
        if (next <= (state.ledger.approved ?? 0) + COST_EPSILON) {
          log.warn('Ignoring approve signal: the budget is not above the current one', { budget: next });
          return;
        }
        state.approve(next, 'signal', approvedBy);
      } else {
        log.info('Ignoring approve signal: the batch is not waiting for approval', { status });
      }
    },
    { description: MessageDescriptions.approve },
  );
  setHandler(approveBudgetUpdate, ({ budget, approvedBy }) => state.approve(budget, 'update', approvedBy), {
    description: MessageDescriptions.approveBudget,
    validator: (arg) => {
      const parsed = validateWith(approveBudgetSchema, arg);
      if (!parsed.ok) throw new Error(describeIssues(parsed.issues));
      if (!waitingForApproval())
        throw new Error(`the batch is not waiting for approval (status: ${state.view.status})`);
      const { budget } = parsed.value;
      const spent = state.ledger.spent;
      if (budget + COST_EPSILON < spent) {
        throw new Error(`budget ${budget} BRL is below what was already spent (${spent} BRL)`);
      }
      const current = state.ledger.approved;
      if (state.view.status === 'awaiting_budget' && current !== null && budget <= current + COST_EPSILON) {
        throw new Error(
          `budget ${budget} BRL is not above the current budget (${current} BRL), so the batch could not go on`,
        );
      }
    },
  });
  setHandler(
    rejectSignal,
    (payload) => {
      if (state.view.status !== 'estimating' && !waitingForApproval()) {
        log.info('Ignoring reject signal: the batch is not waiting for approval', {
          status: state.view.status,
        });
        return;
      }
      state.reject(payload?.reason ?? null);
    },
    { description: MessageDescriptions.reject },
  );
  setHandler(pauseSignal, () => state.setPaused(true), { description: MessageDescriptions.pause });
  setHandler(resumeSignal, () => state.resume(), { description: MessageDescriptions.resume });
  setHandler(
    setConcurrencyUpdate,
    (concurrency) => {
      state.setConcurrency(concurrency);
      return concurrency;
    },
    {
      description: MessageDescriptions.setConcurrency,
      validator: (concurrency) => {
        const parsed = validateWith(concurrencySchema, concurrency, ['concurrency']);
        if (!parsed.ok) throw new Error(describeIssues(parsed.issues));
      },
    },
  );
}
