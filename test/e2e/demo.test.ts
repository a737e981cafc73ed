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
  }, 180_000);
});
