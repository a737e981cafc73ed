import { nextPollDelay } from '../../src/cli/watch';

describe('reading a batch that is not changing backs off', () => {
  test('doubles up to 5 s while nothing changes, back to the interval on a change', () => {
    const delays: number[] = [];
    let delay = 500;
    for (let i = 0; i < 6; i++) delays.push((delay = nextPollDelay(delay, false, 500)));
    expect(delays).toEqual([1000, 2000, 4000, 5000, 5000, 5000]);
    expect(nextPollDelay(5000, true, 500)).toBe(500);
    // An interval longer than the cap is kept as it is.
    expect(nextPollDelay(8000, false, 8000)).toBe(8000);
  });
});
