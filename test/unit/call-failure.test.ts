import {
  ActivityFailure,
  ApplicationFailure,
  RetryState,
  TimeoutFailure,
  TimeoutType,
} from '@temporalio/common';
import { FailureTypes } from '../../src/shared';
import { describeCallFailure, describeWorkflowError } from '../../src/workflows/call-failure';

/** What the workflow sees when a `callMaritaca` activity fails: the activity's failure as the cause. */
const activityFailure = (cause: Error | undefined): ActivityFailure =>
  new ActivityFailure(
    'Activity task failed',
    'callMaritaca',
    '7',
    RetryState.MAXIMUM_ATTEMPTS_REACHED,
    'worker@host',
    cause,
  );

const MAX_ATTEMPTS = 5;

describe('describeCallFailure', () => {
  test('reads status, attempt and Retry-After from the activity’s ApplicationFailure details', () => {
    const cause = ApplicationFailure.create({
      type: FailureTypes.RateLimited,
      message: 'Maritaca answered 429: too many requests',
      details: [{ status: 429, attempt: 2, retryAfterMs: 1_500 }],
    });
    expect(describeCallFailure(activityFailure(cause), MAX_ATTEMPTS)).toStrictEqual({
      error: {
        type: FailureTypes.RateLimited,
        message: 'Maritaca answered 429: too many requests',
        status: 429,
      },
      attempts: 2,
      retryAfterMs: 1_500,
      retryable: true,
    });
  });

  test('an ApplicationFailure without details took every attempt and has no status nor Retry-After', () => {
    const cause = ApplicationFailure.create({ type: FailureTypes.ServerError, message: 'bad gateway' });
    expect(describeCallFailure(activityFailure(cause), MAX_ATTEMPTS)).toStrictEqual({
      error: { type: FailureTypes.ServerError, message: 'bad gateway' },
      attempts: MAX_ATTEMPTS,
      retryable: true,
    });
  });

  test('an ApplicationFailure without a type is reported as Error; one not wrapped is read the same', () => {
    const untyped = ApplicationFailure.create({ message: 'no type', details: [{ attempt: 1 }] });
    expect(describeCallFailure(activityFailure(untyped), MAX_ATTEMPTS)).toStrictEqual({
      error: { type: 'Error', message: 'no type' },
      attempts: 1,
      retryable: true,
    });
    const bare = ApplicationFailure.create({
      type: FailureTypes.BadRequest,
      message: 'invalid model',
      details: [{ status: 422, attempt: 1 }],
    });
    expect(describeCallFailure(bare, MAX_ATTEMPTS)).toStrictEqual({
      error: { type: FailureTypes.BadRequest, message: 'invalid model', status: 422 },
      attempts: 1,
      retryable: false,
    });
  });

  test('a 504 may have been billed: its details say so', () => {
    const cause = ApplicationFailure.create({
      type: FailureTypes.ServerError,
      message: 'gateway timeout',
      details: [{ status: 504, attempt: 1, billing: 'unknown' }],
    });
    expect(describeCallFailure(activityFailure(cause), MAX_ATTEMPTS)).toMatchObject({
      retryable: true,
      billing: 'unknown',
    });
  });

  test('a Temporal timeout is MaritacaTimeout, names the timeout type and took every attempt', () => {
    const timeout = new TimeoutFailure('activity timeout', undefined, TimeoutType.START_TO_CLOSE);
    const described = describeCallFailure(activityFailure(timeout), MAX_ATTEMPTS);
    expect(described).toStrictEqual({
      error: { type: FailureTypes.Timeout, message: expect.stringContaining('START_TO_CLOSE') },
      attempts: MAX_ATTEMPTS,
      retryable: true,
      billing: 'unknown',
    });
    expect(FailureTypes.Timeout).toBe('MaritacaTimeout');
    const heartbeat = new TimeoutFailure('activity timeout', undefined, TimeoutType.HEARTBEAT);
    expect(describeCallFailure(activityFailure(heartbeat), 3).error.message).toContain('HEARTBEAT');
  });

  test('anything else is a plain Error with its message, after every attempt', () => {
    expect(describeCallFailure(new Error('socket hang up'), MAX_ATTEMPTS)).toStrictEqual({
      error: { type: 'Error', message: 'socket hang up' },
      attempts: MAX_ATTEMPTS,
      retryable: true,
      billing: 'unknown',
    });
    expect(describeCallFailure(activityFailure(new TypeError('oops')), 2)).toStrictEqual({
      error: { type: 'Error', message: 'oops' },
      attempts: 2,
      retryable: true,
      billing: 'unknown',
    });
    expect(describeCallFailure('not an error', 1)).toStrictEqual({
      error: { type: 'Error', message: 'not an error' },
      attempts: 1,
      retryable: true,
      billing: 'unknown',
    });
  });
});

describe('describeWorkflowError', () => {
  test('an activity failure names its cause', () => {
    const cause = ApplicationFailure.create({ type: FailureTypes.StoreUnreadable, message: 'access denied' });
    expect(describeWorkflowError(activityFailure(cause))).toBe('Activity task failed: access denied');
  });

  test('an activity failure without a cause, an Error or any value is its message', () => {
    expect(describeWorkflowError(activityFailure(undefined))).toBe('Activity task failed');
    expect(describeWorkflowError(new Error('invalid input'))).toBe('invalid input');
    expect(describeWorkflowError('plain')).toBe('plain');
    expect(describeWorkflowError(42)).toBe('42');
  });
});
