import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Batch status (`running`, `awaiting_approval`, ...): find the batches that wait for a person. */
export const BATCH_STATUS_KEY = defineSearchAttributeKey('MaritacaBatchStatus', SearchAttributeType.KEYWORD);
/** The estimate's total, BRL. */
export const ESTIMATED_COST_KEY = defineSearchAttributeKey(
  'MaritacaEstimatedCost',
  SearchAttributeType.DOUBLE,
);
/** Spent so far, BRL. */
export const ACTUAL_COST_KEY = defineSearchAttributeKey('MaritacaActualCost', SearchAttributeType.DOUBLE);
/** Requests in the batch. */
export const REQUESTS_KEY = defineSearchAttributeKey('MaritacaRequests', SearchAttributeType.INT);

/** Every search attribute a batch sets, with the type name the `temporal` CLI takes. */
export const BATCH_SEARCH_ATTRIBUTES = [
  { key: BATCH_STATUS_KEY, cliType: 'Keyword' },
  { key: ESTIMATED_COST_KEY, cliType: 'Double' },
  { key: ACTUAL_COST_KEY, cliType: 'Double' },
  { key: REQUESTS_KEY, cliType: 'Int' },
] as const;

/** The one command that registers them on a self-hosted server (or the dev server). */
export function searchAttributeCreateCommand(namespace: string): string {
  const pairs = BATCH_SEARCH_ATTRIBUTES.map(
    ({ key, cliType }) => `--name ${key.name} --type ${cliType}`,
  ).join(' ');
  return `temporal operator search-attribute create --namespace ${namespace} ${pairs}`;
}
