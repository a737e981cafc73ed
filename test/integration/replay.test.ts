import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'histories');

/**
 * Replays the recorded histories of finished batches against today's workflow code: a change
 * that would break batches already running (a new command where the history has another) fails here.
 */
/** Shapes recorded by today's recorder, and by the recorder of 0.1.0 (before the batch store). */
const CURRENT_SHAPES = [
  'approval-timeout',
  'approved',
  'budget-pause',
  'budget-timeout',
  'continue-as-new',
  'failed',
  'failures',
  'file-source',
  'rate-window',
  'rejected',
  'retry-after-hold',
  'workflow-retries',
  'structured-reask',
  'call-runs',
  'api-health',
  'key-leases',
  's3-run-logs',
];
const V0_1_SHAPES = ['approved', 'budget-pause', 'continue-as-new', 'failed', 'failures', 'rejected'];

function fixturesIn(folder: string): string[] {
  return readdirSync(folder)
    .filter((f) => f.endsWith('.json'))
    .map((f) => path.join(folder, f));
}

function shapesOf(files: string[]): string[] {
  return [...new Set(files.map((f) => path.basename(f).replace(/-\d+\.json$/, '')))].sort();
}

describe('replaying recorded batch histories', () => {
  const current = fixturesIn(FIXTURES);
  // Batches started by 0.1.0 may still be running when a team upgrades: their histories must
  // replay on today's code too (new commands sit behind patched()).
  const older = fixturesIn(path.join(FIXTURES, 'v0.1.0'));

  test('there are fixtures of every shape, from this version and from 0.1.0', () => {
    expect(shapesOf(current)).toEqual([...CURRENT_SHAPES].sort());
    expect(shapesOf(older)).toEqual([...V0_1_SHAPES].sort());
  });

  test('every history replays without a determinism error', async () => {
    const histories = [...current, ...older].map((file) => ({
      workflowId: path.relative(FIXTURES, file),
      history: JSON.parse(readFileSync(file, 'utf8')) as unknown,
    }));
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories(
      { workflowBundle: { codePath: process.env.TEST_WORKFLOW_BUNDLE! } },
      histories,
    )) {
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
    expect(histories.length).toBeGreaterThanOrEqual(16);
  });
});
