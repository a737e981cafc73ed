import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'histories');

/**
 * Replays the recorded histories of finished batches against today's workflow code: a change
 * that would break batches already running (a new command where the history has another) fails here.
 */
describe('replaying recorded batch histories', () => {
  const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.json'));

  test('there are fixtures of every shape', () => {
    const shapes = new Set(files.map((f) => f.replace(/-\d+\.json$/, '')));
    expect([...shapes].sort()).toEqual(
      ['approved', 'budget-pause', 'continue-as-new', 'failed', 'failures', 'rejected'].sort(),
    );
  });

  test('every history replays without a determinism error', async () => {
    const histories = files.map((file) => ({
      workflowId: file,
      history: JSON.parse(readFileSync(path.join(FIXTURES, file), 'utf8')) as unknown,
    }));
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories(
      { workflowBundle: { codePath: process.env.TEST_WORKFLOW_BUNDLE! } },
      histories,
    )) {
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
    expect(histories.length).toBeGreaterThanOrEqual(7);
  });
});
