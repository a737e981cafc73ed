import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { FailureTypes, describeIssues, validateWith } from '../shared';
import {
  DEFAULT_KEY_LIMITER_HISTORY_EVENT_LIMIT,
  DEFAULT_KEY_LIMITER_IDLE_MS,
  KeyLeaseBook,
  keyLeaseRequestIssues,
  keyLimiterInputSchema,
  type KeyLimiterInput,
  type KeyLimiterResult,
  type KeyLimiterStatus,
} from '../shared/key-limiter';
import {
  KeyLimiterMessageDescriptions,
  keyLimiterStatusQuery,
  leaseKeyCapacityUpdate,
} from '../shared/key-limiter-messages';

/**
 * One per Maritaca API key: hands out short leases of the key's per-minute capacity to every
 * batch and worker using the key, round-robin between the batches waiting, so their starts
 * together stay within the key's limits. Callers reach it by update-with-start
 * (`leaseKeyCapacity`); it continues as new before its history grows long and ends by itself
 * once no one has asked for `idleMs`. The policy is `KeyLeaseBook` in `shared/key-limiter.ts`;
 * this file only feeds it time and messages.
 */
export async function maritacaKeyLimiter(input: KeyLimiterInput): Promise<KeyLimiterResult> {
  const validated = validateWith(keyLimiterInputSchema, input);
  if (!validated.ok) {
    throw ApplicationFailure.create({
      type: FailureTypes.InvalidInput,
      message: `Invalid key limiter input: ${describeIssues(validated.issues)}`,
      nonRetryable: true,
    });
  }
  const idleMs = input.idleMs ?? DEFAULT_KEY_LIMITER_IDLE_MS;
  const historyEventLimit = input.historyEventLimit ?? DEFAULT_KEY_LIMITER_HISTORY_EVENT_LIMIT;
  const book = new KeyLeaseBook(input, input.carried, Date.now());
  // A continued run knows when each worker last reported its limits; noting the starter's again
  // would keep a departed worker's limits alive.
  if (!input.carried) book.noteLimits(input.limits, Date.now());

  const historyFull = () =>
    workflowInfo().continueAsNewSuggested || workflowInfo().historyLength >= historyEventLimit;
  // The main loop sleeps until the book's next change; a demand wakes it only when it needs an
  // earlier look, so a steady stream of leases costs no timer per lease.
  let plannedWakeAt = Number.POSITIVE_INFINITY;
  let wake = false;
  let rollingOver = false;

  setHandler(
    leaseKeyCapacityUpdate,
    async (request) => {
      const now = Date.now();
      const id = book.demand(request, now);
      // A demand arriving while the run hands over gets what fits now and no wait.
      if (rollingOver) book.settleAll(now);
      const wakeAt = book.nextWakeAt(now);
      if ((wakeAt !== undefined && wakeAt < plannedWakeAt) || historyFull()) wake = true;
      render(book);
      await condition(() => book.isSettled(id));
      const grant = book.collect(id, Date.now());
      render(book);
      return grant;
    },
    {
      validator: (request) => {
        const issues = keyLeaseRequestIssues(request);
        if (issues) throw new Error(`Invalid leaseKeyCapacity request: ${issues}`);
      },
      description: KeyLimiterMessageDescriptions.leaseKeyCapacity,
    },
  );
  setHandler(keyLimiterStatusQuery, (): KeyLimiterStatus => status(book), {
    description: KeyLimiterMessageDescriptions.keyLimiterStatus,
  });

  for (;;) {
    const now = Date.now();
    book.allocate(now);
    book.expire(now);
    render(book);
    if (historyFull()) {
      rollingOver = true;
      book.settleAll(now);
      await condition(allHandlersFinished);
      const { carried: _previous, ...config } = input;
      return continueAsNew<typeof maritacaKeyLimiter>({ ...config, carried: book.getState() });
    }
    const idleEndAt = book.endsIdleAt(idleMs);
    if (now >= idleEndAt && book.pendingDemands === 0 && allHandlersFinished()) {
      return { endedBy: 'idle', granted: { ...book.totals } };
    }
    plannedWakeAt = Math.min(book.nextWakeAt(now) ?? Number.POSITIVE_INFINITY, idleEndAt);
    wake = false;
    await condition(() => wake, Math.max(1, plannedWakeAt - now));
  }
}

/** What the `keyLimiterStatus` query answers; reads the book without changing it (queries are not replayed). */
function status(book: KeyLeaseBook): KeyLimiterStatus {
  const now = Date.now();
  return {
    limits: book.effectiveLimits(now),
    usage: book.usage(now),
    waiting: book.pendingDemands,
    batches: book.batches,
    granted: { ...book.totals },
  };
}

/** The limiter's state in the Temporal UI (metadata, not a command: costs no history). */
function render(book: KeyLeaseBook): void {
  const s = status(book);
  const limit = (value: number | undefined) => (value === undefined ? 'no limit' : String(value));
  setCurrentDetails(
    [
      `**Limits:** ${limit(s.limits.rpm)} RPM, ${limit(s.limits.inputTpm)} input TPM, ${limit(s.limits.outputTpm)} output TPM`,
      `**In the window:** ${s.usage.requests} requests, ${s.usage.inputTokens} input tokens, ${s.usage.outputTokens} output tokens`,
      `**Waiting:** ${s.waiting} demands from ${s.batches} batches`,
      `**Granted so far:** ${s.granted.requests} requests in ${s.granted.leases} leases`,
    ].join('\n\n'),
  );
}
