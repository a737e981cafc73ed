/**
 * Type strings of the `ApplicationFailure`s this package raises. Other SDKs and the
 * `temporal` CLI see these names, so they never change.
 */
export const FailureTypes = {
  /** Maritaca answered 429; retried after `Retry-After`. */
  RateLimited: 'MaritacaRateLimited',
  /** Maritaca answered 5xx; retried. */
  ServerError: 'MaritacaServerError',
  /** The call timed out or the connection failed; retried. */
  ConnectionError: 'MaritacaConnectionError',
  /** Maritaca refused the request (400, 404, 422); not retried. */
  BadRequest: 'MaritacaBadRequest',
  /** The API key was refused (401, 403); not retried. */
  AuthenticationError: 'MaritacaAuthenticationError',
  /** The account cannot pay (402, or a quota message); not retried. */
  AccountError: 'MaritacaAccountError',
  /** An answer Maritaca should not have sent (no choices, unparseable body); not retried. */
  InvalidResponse: 'MaritacaInvalidResponse',
  /**
   * The answer did not match the JSON (or the forced function call) the request asked for;
   * asked again up to `structuredOutputRetries` times, then the request's outcome.
   */
  InvalidStructuredOutput: 'MaritacaInvalidStructuredOutput',
  /** The activity timed out on Temporal's side (the call never reported back). */
  Timeout: 'MaritacaTimeout',
  /** The batch input broke a rule the schema checks; raised by the workflow. */
  InvalidInput: 'MaritacaBatchInvalidInput',
  /** A request exhausted its retries and `returnExceptions` was false; fails the batch. */
  RequestFailed: 'MaritacaBatchRequestFailed',
  /** The batch store cannot serve an object (missing, or access denied); not retried. */
  StoreUnreadable: 'MaritacaBatchStoreUnreadable',
} as const;

/** Any value of {@link FailureTypes}. */
export type FailureType = (typeof FailureTypes)[keyof typeof FailureTypes];

/** Failure types the retry policy never retries. */
export const NON_RETRYABLE_FAILURE_TYPES: readonly string[] = [
  FailureTypes.BadRequest,
  FailureTypes.AuthenticationError,
  FailureTypes.AccountError,
  FailureTypes.InvalidResponse,
  FailureTypes.InvalidInput,
  FailureTypes.StoreUnreadable,
  FailureTypes.InvalidStructuredOutput,
];

/** Details attached to a `callMaritaca` failure, so the workflow can report status and attempts. */
export interface CallFailureDetails {
  status?: number;
  attempt: number;
  /** From a 429's `Retry-After`: how long the whole batch should hold back. */
  retryAfterMs?: number;
  /**
   * `unknown` when the request may have reached Maritaca and been billed although no answer
   * came back (a timeout, a connection lost mid-call, a gateway timeout): the batch counts it
   * at its worst case. Absent when Maritaca certainly did not bill it (refused, 4xx, 5xx).
   */
  billing?: 'unknown';
  /** What the failed call cost when Maritaca answered and billed it (an answer that did not match its schema). */
  billedCost?: number;
  /** Heartbeats the call sent before it failed (each a Temporal action). */
  heartbeats?: number;
}

/**
 * What a run of calls logs (at WARN, with the request's id, attempt and the failure as `error`)
 * when one of its calls fails: the worker's logger treats it like a failed `callMaritaca` activity.
 */
export const RUN_CALL_FAILED_MESSAGE = 'Maritaca call failed';

/**
 * Whose fault a failed call is: `api` (Maritaca unreachable or failing: timeouts, lost
 * connections, 5xx), `credentials` (the key or account refused), `rate_limited` (a 429), or `own`
 * (this request was refused or misanswered). Only `own` and `rate_limited` say Maritaca is up.
 */
export type FailureClass = 'api' | 'credentials' | 'rate_limited' | 'own';

/** The {@link FailureClass} of a failure type. */
export function failureClassOf(type: string): FailureClass {
  switch (type) {
    case FailureTypes.ServerError:
    case FailureTypes.ConnectionError:
    case FailureTypes.Timeout:
    case 'Error':
      return 'api';
    case FailureTypes.AuthenticationError:
    case FailureTypes.AccountError:
      return 'credentials';
    case FailureTypes.RateLimited:
      return 'rate_limited';
    default:
      return 'own';
  }
}
