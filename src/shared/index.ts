export * from './constants';
export * from './duration';
export * from './failures';
export * from './messages';
export * from './prices';
export * from './schema';
export * from './types';
export * from './resolve';
export * from './rate-window';
export * from './search-attributes';
export * from './details';
export * from './budget-ledger';
export * from './dispatch-policy';
export * from './batch-state';
export * from './template-overhead';
export * from './chat-content';
export * from './temporal-actions';
export {
  DEFAULT_KEY_LEASE_MAX_WAIT_MS,
  DEFAULT_KEY_LIMITER_HISTORY_EVENT_LIMIT,
  DEFAULT_KEY_LIMITER_IDLE_MS,
  InvalidKeyLimitsError,
  KEY_LIMITER_WORKFLOW_ID_PREFIX,
  KEY_LIMITER_WORKFLOW_TYPE,
  RATE_LIMIT_ENV,
  checkKeyLimits,
  parseKeyLimits,
  type KeyDemand,
  type KeyGrant,
  type KeyLease,
  type KeyLeaseRequest,
  type KeyLimiterInput,
  type KeyLimiterResult,
  type KeyLimiterStatus,
  type KeyLimits,
  type KeyUsage,
  type ReturnedTokens,
} from './key-limiter';
export {
  KeyLimiterMessageNames,
  keyLimiterStatusQuery,
  leaseKeyCapacityUpdate,
} from './key-limiter-messages';
