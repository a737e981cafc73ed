import { spawnSync } from 'node:child_process';
import path from 'node:path';

const root = path.join(__dirname, '..', '..');

/** Lints `code` as if it lived at `filePath`, through the project's real ESLint config. */
async function lint(code: string, filePath: string): Promise<string[]> {
  const run = spawnSync(
    process.execPath,
    [
      path.join(root, 'node_modules', 'eslint', 'bin', 'eslint.js'),
      '--stdin',
      '--stdin-filename',
      filePath,
      '--format',
      'json',
    ],
    { cwd: root, input: code, encoding: 'utf8' },
  );
  const [result] = JSON.parse(run.stdout) as { messages: { message: string }[] }[];
  return result!.messages.map((m) => m.message);
}

describe('lint keeps workflow code deterministic', () => {
  test('refuses Node built-ins, Node-side Temporal packages and runtime imports of activities', async () => {
    const messages = await lint(
      [
        "import fs from 'node:fs';",
        "import { Client } from '@temporalio/client';",
        "import { Context } from '@temporalio/activity';",
        "import { createActivities } from '../activities';",
        'export const all = [fs, Client, Context, createActivities];',
        '',
      ].join('\n'),
      'src/workflows/probe.ts',
    );
    expect(messages).toHaveLength(4);
  });

  test('allows the workflow SDK, shared code and type-only activity imports', async () => {
    const messages = await lint(
      [
        "import { proxyActivities } from '@temporalio/workflow';",
        "import type { createActivities } from '../activities';",
        "import { DEFAULT_MODEL } from '../shared';",
        'export const all = [proxyActivities<ReturnType<typeof createActivities>>({ startToCloseTimeout: 1 }), DEFAULT_MODEL];',
        '',
      ].join('\n'),
      'src/workflows/probe.ts',
    );
    expect(messages).toEqual([]);
  });

  test('leaves the same imports alone outside src/workflows', async () => {
    const messages = await lint(
      "import fs from 'node:fs';\nexport const x = fs;\n",
      'src/activities/probe.ts',
    );
    expect(messages).toEqual([]);
  });
});

describe('lint keeps the layers pointing one way', () => {
  test('activities may not import client, worker or CLI code', async () => {
    const messages = await lint(
      [
        "import { MaritacaBatchClient } from '../client';",
        "import { parseBatchJsonl } from '../client/jsonl';",
        "import { runWorker } from '../worker';",
        "import { storeFromEnv } from '../store';",
        'export const all = [MaritacaBatchClient, parseBatchJsonl, runWorker, storeFromEnv];',
        '',
      ].join('\n'),
      'src/activities/probe.ts',
    );
    expect(messages).toHaveLength(3);
  });

  test('the store may import only shared and the codec', async () => {
    const messages = await lint(
      [
        "import { createActivities } from '../activities';",
        "import { MaritacaBatchClient } from '../client';",
        "import { FailureTypes } from '../shared';",
        "import { createLineSealer } from '../codec/sealed-lines';",
        'export const all = [createActivities, MaritacaBatchClient, FailureTypes, createLineSealer];',
        '',
      ].join('\n'),
      'src/store/probe.ts',
    );
    expect(messages).toHaveLength(2);
  });

  test('workflows may not reach the tokenizer at run time', async () => {
    const messages = await lint(
      "import { countTokens } from '../tokenizer';\nexport const x = countTokens;\n",
      'src/workflows/probe.ts',
    );
    expect(messages).toHaveLength(1);
  });

  test('workflows may not reach the store at run time', async () => {
    const messages = await lint(
      "import { storeFromEnv } from '../store';\nexport const x = storeFromEnv;\n",
      'src/workflows/probe.ts',
    );
    expect(messages).toHaveLength(1);
  });
});
