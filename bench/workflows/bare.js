'use strict';
// The ceiling Temporal itself sets: no-op activities through the same sliding window, nothing else.
const { condition, proxyActivities } = require('@temporalio/workflow');

const { noop } = proxyActivities({ startToCloseTimeout: '1 minute' });

/** Runs `count` no-op activities with at most `concurrency` in flight. */
async function bareWindow(count, concurrency) {
  let inFlight = 0;
  let done = 0;
  for (let started = 0; started < count; started++) {
    await condition(() => inFlight < concurrency);
    inFlight++;
    void noop().then(() => {
      inFlight--;
      done++;
    });
  }
  await condition(() => inFlight === 0);
  return done;
}

module.exports = { bareWindow };
