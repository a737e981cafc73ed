import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { KeyGrant, KeyLeaseRequest, KeyLimiterStatus } from './key-limiter';

/** Names of the key limiter's messages: other SDKs and the `temporal` CLI send these. */
export const KeyLimiterMessageNames = {
  leaseKeyCapacity: 'leaseKeyCapacity',
  keyLimiterStatus: 'keyLimiterStatus',
} as const;

/**
 * Asks the key for capacity: answers once at least one request can start (a grant of whole
 * requests with their share of the tokens), or with a zero grant and `retryAfterMs` when the
 * wait runs out. Its validator refuses a malformed demand, naming the field.
 */
export const leaseKeyCapacityUpdate = defineUpdate<KeyGrant, [KeyLeaseRequest]>(
  KeyLimiterMessageNames.leaseKeyCapacity,
);

/** The key's limits in force, its window's usage and the demands waiting. */
export const keyLimiterStatusQuery = defineQuery<KeyLimiterStatus>(KeyLimiterMessageNames.keyLimiterStatus);

/** What each message does and takes, for the Temporal UI's dialogs. */
export const KeyLimiterMessageDescriptions: Record<keyof typeof KeyLimiterMessageNames, string> = {
  leaseKeyCapacity:
    'Lease capacity of the key. Payload: {"batchId": "<id>", "requests": <n>, "inputTokens": <total worst case>, "outputTokens": <total max output>, "priority"?: <weight, default 1>, "returned"?: [{"grantedAt": <ms>, "inputTokens": <unused>, "outputTokens": <unused>}], "limits": {"rpm"?, "inputTpm"?, "outputTpm"?}}. Returns {requests, inputTokens, outputTokens, grantedAt, retryAfterMs?}.',
  keyLimiterStatus:
    'The limits in force, the requests and tokens counted in the window, the demands waiting and the lifetime totals. No arguments.',
};
