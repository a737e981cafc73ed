import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { WithStartWorkflowOperation, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import {
  FailureTypes,
  KEY_LIMITER_WORKFLOW_ID_PREFIX,
  KEY_LIMITER_WORKFLOW_TYPE,
  leaseKeyCapacityUpdate,
  type KeyDemand,
  type KeyLease,
  type KeyLimiterInput,
  type KeyLimits,
} from '../shared';

/** What {@link createKeyLeaseActivity} needs. */
export interface KeyLeaseOptions {
  /** The worker's Maritaca key: only its hash leaves the process, as the limiter's workflow id. */
  apiKey: string;
  /** The key's limits (`MARITACA_RATE_LIMIT`); none means every lease is `{ unlimited: true }`. */
  limits?: KeyLimits;
  /** Task queue the limiter runs on when this call starts it (default: the activity's own, the worker's). */
  taskQueue?: string;
  /** Client to reach the limiter (default: the worker's, from the activity context). */
  client?: Client;
  /** Durations of a limiter this call starts (tests shorten them); production uses the defaults. */
  limiter?: Omit<KeyLimiterInput, 'limits' | 'carried'>;
}

/** A demand as the batch sends it: `batchId` defaults to the calling workflow's id. */
export type KeyLeaseDemand = Omit<KeyDemand, 'batchId'> & { batchId?: string };

/**
 * The limiter's workflow id for `apiKey`: it names the key without revealing it (16 hex digits
 * of its SHA-256), so every worker holding the key reaches the same limiter.
 */
export function keyLimiterWorkflowId(apiKey: string): string {
  return KEY_LIMITER_WORKFLOW_ID_PREFIX + createHash('sha256').update(apiKey).digest('hex').slice(0, 16);
}

/** Whether any limit is set. */
function hasLimits(limits: KeyLimits | undefined): limits is KeyLimits {
  return limits !== undefined && Object.values(limits).some((value) => value !== undefined);
}

/**
 * Builds the `leaseKeyCapacity` activity: asks the key's limiter workflow for capacity by
 * update-with-start (starting the limiter on first use, reaching the running one after), and
 * returns its grant. The grant may be smaller than the demand, or zero with `retryAfterMs` after
 * the limiter's bounded wait (10 s by default): give the activity a start-to-close timeout well
 * above it. Without limits it answers `{ unlimited: true }` at once, touching nothing.
 *
 * The update's id is the calling activity's (workflow, run, activity id), so an attempt retried
 * after a lost answer gets the grant the first attempt was given instead of a second one.
 *
 * @example
 * const leaseKeyCapacity = createKeyLeaseActivity({ apiKey, limits: { rpm: 1000, outputTpm: 200_000 } });
 * // in a batch: const lease = await leaseKeyCapacity({ requests: 5, inputTokens: 2000, outputTokens: 5000 });
 */
export function createKeyLeaseActivity(options: KeyLeaseOptions) {
  const { apiKey, limits } = options;
  const workflowId = keyLimiterWorkflowId(apiKey);
  return async function leaseKeyCapacity(demand: KeyLeaseDemand): Promise<KeyLease> {
    if (!hasLimits(limits)) return { unlimited: true };
    const context = Context.current();
    const caller = context.info.workflowExecution;
    const client = options.client ?? context.client;
    const start = new WithStartWorkflowOperation(KEY_LIMITER_WORKFLOW_TYPE, {
      workflowId,
      taskQueue: options.taskQueue ?? context.info.taskQueue,
      args: [{ ...options.limiter, limits }],
      workflowIdConflictPolicy: 'USE_EXISTING',
      staticSummary: `Maritaca key limiter (key sha256 ${workflowId.slice(KEY_LIMITER_WORKFLOW_ID_PREFIX.length)}...)`,
    });
    const batchId = demand.batchId ?? caller?.workflowId;
    if (!batchId) {
      throw ApplicationFailure.create({
        type: FailureTypes.InvalidInput,
        message: 'leaseKeyCapacity needs a batchId when no workflow calls it',
        nonRetryable: true,
      });
    }
    try {
      const grant = await client.workflow.executeUpdateWithStart(leaseKeyCapacityUpdate, {
        args: [{ ...demand, batchId, limits }],
        ...(caller
          ? { updateId: `lease/${caller.workflowId}/${caller.runId}/${context.info.activityId}` }
          : {}),
        startWorkflowOperation: start,
      });
      return { ...grant, unlimited: false };
    } catch (err) {
      // The limiter's validator refused the demand: asking again cannot help.
      if (err instanceof WorkflowUpdateFailedError) {
        throw ApplicationFailure.create({
          type: FailureTypes.InvalidInput,
          message: `The key limiter refused the lease: ${err.cause?.message ?? err.message}`,
          nonRetryable: true,
        });
      }
      throw err;
    }
  };
}
