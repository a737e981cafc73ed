import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../src/testing/dev-server';
import { spawnCli } from '../helpers/processes';

describe('the demo', () => {
  test('starts a dev server, fake Maritaca and a worker, and runs a 30-question batch to completion', async () => {
    const port = await freePort();
    const uiPort = await freePort();
    const dbFilename = path.join(mkdtempSync(path.join(os.tmpdir(), 'demo-')), 'demo.db');
    const demo = spawnCli(
      ['demo', '--no-keep', '--port', String(port), '--ui-port', String(uiPort), '--db-filename', dbFilename],
      { MARITACA_API_KEY: '' },
    );
    const code = await demo.exited;
    const output = demo.output();
    expect({ code, output }).toMatchObject({ code: 0 });
    expect(output).toMatch(/Estimate: 30 requests/);
    expect(output).toMatch(/Approved a budget of R\$ [\d.]+ by signal/);
    expect(output).toMatch(/Batch completed: spent R\$ [\d.]+/);
    expect(output).toContain('[pergunta-01] Resposta para: Qual é a capital do Brasil?');
    expect(output).toContain(`http://localhost:${uiPort}/namespaces/default/workflows/maritaca-batch-`);

    // The faults the fake server injects on purpose are announced before the batch starts ...
    const upFront = output.indexOf(
      'The fake server answers about 5% of calls with HTTP 500 and 3% with 429 (Retry-After: 1 s) on purpose',
    );
    expect(upFront).toBeGreaterThan(-1);
    expect(upFront).toBeLessThan(output.indexOf('Batch maritaca-batch-'));
    // ... then each shows as one line. The fake server is seeded (42), so the same calls fail on
    // every run: four (two 429s, two 500s) when this was written; one is enough to be meaningful.
    const faults = output.match(
      /^ {2}request pergunta-\d\d: (429, retrying in 1 s|HTTP 500, retrying \(attempt \d+\))$/gm,
    );
    expect(faults?.length ?? 0).toBeGreaterThanOrEqual(1);
    // ... and never as the worker's warning with a stack trace.
    expect(output).not.toMatch(/^\s+at /m);
    expect(output).not.toMatch(/Activity failed|taskToken|Warning/);
  }, 180_000);
});
