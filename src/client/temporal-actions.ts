import type { WorkflowHandle } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** The local-activity marker's name in the history (a local activity is one action). */
const LOCAL_ACTIVITY_MARKER = 'core_local_activity';

/** Adds one event's billable actions to `byType`: what Temporal Cloud charges an action for. */
function countEvent(event: HistoryEvent, byType: Record<string, number>): void {
  const add = (type: string, n = 1) => {
    byType[type] = (byType[type] ?? 0) + n;
  };
  if (event.workflowExecutionStartedEventAttributes) add('workflow_started');
  else if (event.activityTaskScheduledEventAttributes) add('activity_scheduled');
  else if (event.activityTaskStartedEventAttributes) {
    // Retries inside one scheduled activity (Temporal's own retry policy) are actions too.
    const attempt = event.activityTaskStartedEventAttributes.attempt ?? 1;
    if (attempt > 1) add('activity_retry', attempt - 1);
  } else if (event.timerStartedEventAttributes) add('timer');
  else if (event.workflowExecutionSignaledEventAttributes) add('signal');
  else if (event.workflowExecutionUpdateAcceptedEventAttributes) add('update');
  else if (event.upsertWorkflowSearchAttributesEventAttributes) add('search_attributes');
  else if (event.markerRecordedEventAttributes?.markerName === LOCAL_ACTIVITY_MARKER) add('local_activity');
}

/**
 * Counts the billable actions in every run of a batch's workflow, from the latest run back to
 * the first along the continue-as-new chain. Queries leave no trace in a history, and heartbeats
 * neither: the caller adds the heartbeats the batch counted.
 */
export async function actionsInHistory(workflow: WorkflowHandle): Promise<Record<string, number>> {
  const byType: Record<string, number> = {};
  let handle: WorkflowHandle | undefined = workflow;
  while (handle) {
    const { events } = await handle.fetchHistory();
    let previousRun: string | undefined;
    for (const event of events ?? []) {
      countEvent(event, byType);
      previousRun ??= event.workflowExecutionStartedEventAttributes?.continuedExecutionRunId ?? undefined;
    }
    handle = previousRun ? workflow.client.getHandle(workflow.workflowId, previousRun) : undefined;
  }
  return byType;
}
