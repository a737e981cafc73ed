import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow';
import { completionsQuery, type BatchInput, type RequestOutcome } from '../shared';
import type { BatchHandle } from './batch-client';
import { BatchRequestFailedError, MaritacaBatchError } from './errors';

/** Memo a follow-up batch carries, linking it to the batch it retries. */
export interface FollowUpMemo {
  /** The batch whose failures this one retries. */
  retryOf: string;
  /** The first batch of the chain; merged views start there. */
  rootBatchId: string;
}

/** Id of the n-th follow-up of a root batch. */
export function followUpId(rootBatchId: string, n: number): string {
  return `${rootBatchId}-retry-${n}`;
}

/** Every outcome a batch recorded, in input order, including those of a batch that failed or was cancelled. */
export async function outcomesOf(
  handle: BatchHandle,
): Promise<{ status: string; outcomes: RequestOutcome[] }> {
  try {
    const result = await handle.result();
    return { status: result.status, outcomes: result.results };
  } catch (err) {
    if (!(err instanceof BatchRequestFailedError)) throw err;
    if (err.resultsRef) return { status: 'failed', outcomes: await handle.storedOutcomes(err.resultsRef) };
    const outcomes: RequestOutcome[] = [];
    let from = 0;
    for (;;) {
      const page = await handle.workflowHandle.query(completionsQuery, { from, limit: 5000 });
      outcomes.push(...page.outcomes);
      if (page.outcomes.length === 0 || page.nextFrom >= page.total) break;
      from = page.nextFrom;
    }
    return { status: 'failed', outcomes: outcomes.sort((a, b) => a.index - b.index) };
  }
}

/** The input a batch was started with, read from the first event of its history. */
export async function inputOf(client: Client, batchId: string): Promise<BatchInput> {
  const history = await client.workflow.getHandle(batchId).fetchHistory();
  const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
  if (!started) throw new MaritacaBatchError(`Batch ${batchId} has no start event in its history`);
  return decodeFromPayloadsAtIndex<BatchInput>(
    client.options.loadedDataConverter,
    0,
    started.input?.payloads,
  );
}

/** The chain's root id and memo of a batch (itself when it is not a follow-up). */
export async function rootOf(client: Client, batchId: string): Promise<string> {
  const description = await client.workflow.getHandle(batchId).describe();
  const memo = description.memo as Partial<FollowUpMemo> | undefined;
  return memo?.rootBatchId ?? batchId;
}

/** Ids of the follow-ups that exist for a root, in order. */
export async function followUpsOf(client: Client, rootBatchId: string): Promise<string[]> {
  const ids: string[] = [];
  for (let n = 1; ; n++) {
    const id = followUpId(rootBatchId, n);
    try {
      await client.workflow.getHandle(id).describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return ids;
      throw err;
    }
    ids.push(id);
  }
}
