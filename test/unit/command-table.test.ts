/**
 * The README's command table is generated from the CLI's own definitions (`npm run docs:cli`):
 * this fails when a command or flag is added, removed or reworded without regenerating it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildProgram } from '../../src/cli';
import { COMMAND_TABLE_END, COMMAND_TABLE_START, commandRows } from '../../src/cli/command-table';

/** The README table's rows as trimmed cells (Prettier pads them; the content is what counts). */
function readmeRows(): string[][] {
  const text = readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
  const start = text.indexOf(COMMAND_TABLE_START);
  const end = text.indexOf(COMMAND_TABLE_END);
  expect(start).toBeGreaterThan(-1);
  expect(end).toBeGreaterThan(start);
  return text
    .slice(start, end)
    .split('\n')
    .filter((line) => line.startsWith('|'))
    .slice(2)
    .map((line) =>
      line
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((cell) => cell.trim()),
    );
}

describe('the README command table', () => {
  test('lists exactly the commands and flags the CLI defines', () => {
    const expected = commandRows(buildProgram()).map((row) => [
      row.command,
      row.flags || '—',
      row.description,
    ]);
    expect(readmeRows()).toEqual(expected);
  });

  test('covers the commands a team needs', () => {
    const names = buildProgram().commands.map((c) => c.name());
    for (const name of [
      'estimate',
      'submit',
      'approve',
      'reject',
      'pause',
      'resume',
      'set-concurrency',
      'retry-failed',
      'status',
      'results',
      'purge',
      'cancel',
      'list',
      'worker',
      'fake-server',
      'dev',
      'demo',
      'codec-server',
    ]) {
      expect(names).toContain(name);
    }
  });
});
