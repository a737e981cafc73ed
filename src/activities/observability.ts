import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { BATCH_SEARCH_ATTRIBUTES, searchAttributeCreateCommand, type BatchProgress } from '../shared';

/** A progress snapshot as the webhook receives it (JSON body of the POST). */
export interface ProgressEvent {
  batchId: string;
  progress: BatchProgress;
}

/** Receives progress snapshots in the worker (the plugin's `onProgress`). */
export type ProgressListener = (event: ProgressEvent) => void | Promise<void>;

/** Input of the `postProgress` activity. */
export interface PostProgressInput {
  /** Webhook to POST to; absent when only the worker's listener should hear it. */
  url?: string;
  progress: BatchProgress;
}

const checked = new Map<string, Promise<string[]>>();

/**
 * The batch search attributes missing from a namespace (empty when all are registered), asked of
 * the server once per namespace and process. Says so loudly, once, when some are missing.
 */
export function missingSearchAttributes(
  listRegistered: () => Promise<Record<string, unknown>>,
  namespace: string,
  warn: (message: string) => void,
): Promise<string[]> {
  let pending = checked.get(namespace);
  if (!pending) {
    pending = listRegistered().then(
      (registered) => {
        const missing = BATCH_SEARCH_ATTRIBUTES.map(({ key }) => key.name).filter(
          (name) => !(name in registered),
        );
        if (missing.length > 0) {
          warn(
            `Search attributes ${missing.join(', ')} are not registered in namespace "${namespace}": batches run ` +
              `without them (no status filter in the UI). Register them once with: ${searchAttributeCreateCommand(namespace)}`,
          );
        }
        return missing;
      },
      (err: unknown) => {
        checked.delete(namespace);
        warn(
          `Could not list search attributes of namespace "${namespace}" (${(err as Error).message}); batches run without them`,
        );
        return BATCH_SEARCH_ATTRIBUTES.map(({ key }) => key.name);
      },
    );
    checked.set(namespace, pending);
  }
  return pending;
}

/** Builds the activities that feed the UI and outside watchers. */
export function createObservabilityActivities(onProgress?: ProgressListener) {
  return {
    /** Whether this namespace has the batch search attributes; the workflow upserts them only then. */
    async searchAttributesReady(): Promise<boolean> {
      const ctx = Context.current();
      const namespace = ctx.info.namespace;
      const missing = await missingSearchAttributes(
        async () => {
          const response = await ctx.client.connection.operatorService.listSearchAttributes({ namespace });
          return { ...response.customAttributes, ...response.systemAttributes };
        },
        namespace,
        (message) => ctx.log.warn(message),
      );
      return missing.length === 0;
    },

    /** Posts a progress snapshot to the webhook and hands it to the worker's listener. */
    async postProgress(input: PostProgressInput): Promise<void> {
      const ctx = Context.current();
      const event: ProgressEvent = {
        batchId: ctx.info.workflowExecution?.workflowId ?? '',
        progress: input.progress,
      };
      if (input.url) {
        const response = await fetch(input.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(event),
          signal: AbortSignal.timeout(10_000),
        });
        if (!response.ok) {
          const failure = {
            type: 'ProgressWebhookFailed',
            message: `Progress webhook answered HTTP ${response.status}`,
          };
          // A webhook that refuses the request will refuse it again; 5xx and 429 may pass later.
          throw ApplicationFailure.create({
            ...failure,
            nonRetryable: response.status < 500 && response.status !== 429,
          });
        }
      }
      await onProgress?.(event);
    },
  };
}
