import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { AesGcmPayloadCodec, MaritacaBatchClient, MaritacaBatchPlugin, startCodecServer } from '../../src';
import { MessageDescriptions } from '../../src/shared';
import { freePort, startDevServer } from '../../src/testing/dev-server';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { questions, startTestContext, TEST_API_KEY, type TestContext } from '../helpers/context';
import { waitFor } from '../helpers/wait';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(__dirname, '..', '..', 'test-artifacts', 'ui');
/** Screenshots the README shows are refreshed by every run, so they show what the test saw. */
const DOCS = path.join(__dirname, '..', '..', 'docs');
/** The batch's search attributes, as the UI's column picker names them. */
const SEARCH_ATTRIBUTE_COLUMNS = [
  'MaritacaBatchStatus',
  'MaritacaEstimatedCost',
  'MaritacaActualCost',
  'MaritacaRequests',
];

/**
 * A screenshot kept in test-artifacts/ui/; the README's copies in docs/ are refreshed only with
 * `UPDATE_DOCS_SCREENSHOTS=1`, so a test run never leaves tracked files changed.
 */
async function screenshot(
  target: Page | Locator,
  name: string,
  docsName?: string,
  options: { fullPage?: boolean } = {},
): Promise<void> {
  const image = await target.screenshot(options);
  writeFileSync(path.join(ARTIFACTS, name), image);
  if (docsName && process.env.UPDATE_DOCS_SCREENSHOTS === '1')
    writeFileSync(path.join(DOCS, docsName), image);
}

/**
 * Debian's Chromium, installed with apt when missing and possible. Returns why it is not
 * available, or `null` when it is.
 */
function ensureChromium(): string | null {
  if (existsSync(CHROMIUM)) return null;
  const canApt = process.getuid?.() === 0 && existsSync('/usr/bin/apt-get');
  if (!canApt) return 'chromium is not installed and apt-get cannot run here (not root, or no apt)';
  try {
    execFileSync('apt-get', ['update'], { stdio: 'ignore', timeout: 300_000 });
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'chromium'], {
      stdio: 'ignore',
      timeout: 600_000,
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  } catch (err) {
    return `apt-get install chromium failed: ${(err as Error).message}`;
  }
  return existsSync(CHROMIUM) ? null : 'apt-get ran but /usr/bin/chromium is still missing';
}

const unavailable = ensureChromium();
if (unavailable) {
  console.warn(`\n!!!!!!!!\n!!! SKIPPING the Temporal UI browser tests: ${unavailable}\n!!!!!!!!\n`);
}
const describeBrowser = unavailable ? describe.skip : describe;

/** The page's text plus the text of its frames (the UI renders markdown details in iframes). */
async function visibleText(page: Page): Promise<string> {
  const parts = [await page.locator('body').innerText()];
  for (const frame of page.frames()) {
    if (frame === page.mainFrame()) continue;
    parts.push(
      await frame
        .locator('body')
        .innerText()
        .catch(() => ''),
    );
  }
  return parts.join('\n');
}

describeBrowser('watching and approving a batch in the Temporal UI (headless Chromium)', () => {
  let ctx: TestContext;
  let browser: Browser;
  let page: Page;
  const ui = process.env.TEST_TEMPORAL_UI!;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    ctx = await startTestContext({ latencyMs: 150 });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-dev-shm-usage'],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await ctx?.close();
  });

  test('the current details, the status filter and approval through the UI signal dialog', async () => {
    const handle = await ctx.batches.start(questions(8), { model: 'sabiazinho-4', maxConcurrency: 2 });
    await waitFor(
      () => handle.progress(),
      (p) => p.status === 'awaiting_approval',
    );

    // 1. The batch page shows where it stands, what it will cost, what it waits for.
    await page.goto(`${ui}/namespaces/default/workflows/${handle.batchId}`, { waitUntil: 'load' });
    await page
      .getByRole('tab', { name: 'User Metadata' })
      .or(page.getByText('User Metadata'))
      .first()
      .click();
    const metadata = await waitFor(
      () => visibleText(page),
      (text) => text.includes('Status: awaiting_approval'),
      { what: 'the current details in the UI' },
    );
    expect(metadata).toMatch(/0[/⁄]8 \(0%\)/);
    expect(metadata).toMatch(/estimate R\$ 0\.\d+ \(at most R\$ 0\.\d+\)/);
    expect(metadata).toContain('Waiting for: a budget approval');
    expect(metadata).toContain('Maritaca batch: 8 request(s), model sabiazinho-4');
    await page.screenshot({
      path: path.join(ARTIFACTS, 'current-details-awaiting-approval.png'),
      fullPage: true,
    });

    // 2. A link to the workflow list, filtered by type and status, finds the batches waiting for a
    // person; the column picker shows the batch's search attributes next to them.
    const query = `WorkflowType="maritacaBatch" AND MaritacaBatchStatus="awaiting_approval"`;
    await page.goto(`${ui}/namespaces/default/workflows?query=${encodeURIComponent(query)}`, {
      waitUntil: 'load',
    });
    const row = page.getByRole('row').filter({ hasText: handle.batchId });
    await row.first().waitFor({ timeout: 30_000 });
    await page.getByTestId('workflows-summary-table-configuration-button').click();
    for (const column of SEARCH_ATTRIBUTE_COLUMNS) {
      await page.getByRole('button', { name: `Add ${column} column` }).click();
    }
    // Room for them: the filter already says the type, and a waiting batch has no end.
    for (const column of ['Run ID', 'Type', 'End']) {
      await page.getByRole('button', { name: `Remove ${column} column` }).click();
    }
    await page.getByTestId('drawer-close-button').click();
    await page.getByTestId('drawer-close-button').waitFor({ state: 'hidden' });
    await waitFor(
      () => page.getByRole('columnheader').allInnerTexts(),
      (headers) => SEARCH_ATTRIBUTE_COLUMNS.every((c) => headers.some((h) => h.includes(c))),
      { what: 'the search attribute columns' },
    );
    const estimate = (await handle.progress()).estimate!;
    const cells = (await row.first().innerText()).split(/\s*\t\s*|\n/).filter(Boolean);
    expect(cells).toEqual(
      expect.arrayContaining(['awaiting_approval', String(estimate.totalCost), '0', '8']),
    );
    // The table is wider than the default viewport once the columns are in.
    await page.setViewportSize({ width: 1920, height: 900 });
    await screenshot(page, 'list-awaiting-approval.png', 'ui-awaiting-approval-list.png');
    await page.setViewportSize({ width: 1400, height: 1000 });

    // 3. A person approves through the UI's own signal dialog, and the batch runs.
    await page.goto(`${ui}/namespaces/default/workflows/${handle.batchId}`, { waitUntil: 'load' });
    await page.getByRole('button', { name: 'More Actions' }).first().click();
    await page.getByRole('menuitem', { name: 'Send a Signal' }).filter({ visible: true }).first().click();
    // The UI keeps a hidden copy of the dialog; act on the visible one.
    await page.getByTestId('signal-select-button').filter({ visible: true }).first().click();
    await page.getByRole('option', { name: 'approve' }).filter({ visible: true }).first().click();
    const editor = page
      .locator('[role=dialog] .cm-content, dialog .cm-content')
      .filter({ visible: true })
      .first();
    await editor.click();
    await page.keyboard.type('{"approvedBy":"ui-reviewer"}');
    await page.getByRole('button', { name: 'Submit' }).filter({ visible: true }).first().click();

    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(result.approvals[0]).toMatchObject({ approvedBy: 'ui-reviewer', via: 'signal' });

    await page.goto(`${ui}/namespaces/default/workflows/${handle.batchId}`, { waitUntil: 'load' });
    await page.getByText('User Metadata').first().click();
    const finalText = await waitFor(
      () => visibleText(page),
      (text) => text.includes('Status: completed'),
      { what: 'the final details in the UI' },
    );
    // The UI's markdown renderer may typeset the slash as a fraction slash.
    expect(finalText).toMatch(/8[/⁄]8 \(100%\)/);
    expect(finalText).toContain('All 8 requests succeeded');
    expect(finalText).toMatch(/Cost: spent R\$ 0\.\d+ · approved R\$ 0\.\d+/);
    await screenshot(page, 'current-details-completed.png', 'ui-current-details.png', { fullPage: true });
  }, 180_000);

  test("the signal dialog shows approve's description, and an empty payload approves the estimate", async () => {
    const handle = await ctx.batches.start(questions(6), { model: 'sabiazinho-4', maxConcurrency: 2 });
    const waiting = await waitFor(
      () => handle.progress(),
      (p) => p.status === 'awaiting_approval',
    );

    await page.goto(`${ui}/namespaces/default/workflows/${handle.batchId}`, { waitUntil: 'load' });
    await page.getByRole('button', { name: 'More Actions' }).first().click();
    await page.getByRole('menuitem', { name: 'Send a Signal' }).filter({ visible: true }).first().click();
    await page.getByTestId('signal-select-button').filter({ visible: true }).first().click();
    // The UI lists each signal the workflow registered with its description under the name.
    const approve = page.getByRole('option', { name: 'approve' }).filter({ visible: true }).first();
    await approve.waitFor();
    const shown = await approve.innerText();
    expect(shown).toContain(MessageDescriptions.approve);
    expect(shown).toContain('An empty payload approves the estimate.');
    await approve.hover();
    const dialog = page.locator('[role=dialog], dialog').filter({ visible: true }).first();
    await screenshot(dialog, 'approve-dialog.png', 'ui-approve-dialog.png');

    await approve.click();
    const editor = page
      .locator('[role=dialog] .cm-content, dialog .cm-content')
      .filter({ visible: true })
      .first();
    // Nothing typed: the UI sends the signal without a payload.
    expect((await editor.innerText()).trim()).toBe('');
    await page.getByRole('button', { name: 'Submit' }).filter({ visible: true }).first().click();

    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(result.approvals).toHaveLength(1);
    expect(result.approvals[0]).toMatchObject({ via: 'signal', budget: waiting.estimate!.totalCost });
    expect(result.approvals[0]!.approvedBy).toBeUndefined();
    expect(result.approvedBudget).toBe(waiting.estimate!.totalCost);
  }, 180_000);

  test('a batch whose every request failed says so in its current details', async () => {
    const refused = Array.from({ length: 4 }, (_, i) => ({
      id: `r${i}`,
      messages: [{ role: 'user' as const, content: `Pergunta recusada ${i} [[fake-status:400]]` }],
    }));
    const handle = await ctx.batches.start(refused, { returnExceptions: true, autoApproveBelow: 10 });
    expect((await handle.result()).counts).toMatchObject({ succeeded: 0, failed: 4 });
    await page.goto(`${ui}/namespaces/default/workflows/${handle.batchId}`, { waitUntil: 'load' });
    await page.getByText('User Metadata').first().click();
    const text = await waitFor(
      () => visibleText(page),
      (t) => t.includes('Status: completed'),
      { what: 'the final details in the UI' },
    );
    expect(text).toContain('All 4 requests failed (last error: MaritacaBadRequest (HTTP 400)');
    await screenshot(page, 'current-details-all-failed.png', undefined, { fullPage: true });
  }, 120_000);

  test('an encrypted batch shows its decoded input in the UI of a dev server started with --ui-codec-endpoint', async () => {
    const keys = { keyId: 'ui', key: randomBytes(32) };
    const token = 'ui-codec-token';
    const uiPort = await freePort();
    const uiOrigin = `http://127.0.0.1:${uiPort}`;
    const codecServer = await startCodecServer({
      codec: new AesGcmPayloadCodec(keys),
      token,
      uiOrigin,
      port: 0,
    });
    const server = await startDevServer({
      port: await freePort(),
      uiPort,
      extraArgs: ['--ui-codec-endpoint', `${codecServer.url}/${token}`],
    });
    const nativeConnection = await NativeConnection.connect({ address: server.address });
    const worker = await Worker.create({
      connection: nativeConnection,
      taskQueue: 'ui-codec',
      plugins: [
        new MaritacaBatchPlugin({
          apiKey: TEST_API_KEY,
          baseURL: ctx.fake.url,
          workflowBundle: { codePath: process.env.TEST_WORKFLOW_BUNDLE! },
          encryption: keys,
        }),
      ],
    });
    const running = worker.run();
    const connection = await Connection.connect({ address: server.address });
    try {
      const batches = new MaritacaBatchClient({
        client: new Client({ connection, dataConverter: { payloadCodecs: [new AesGcmPayloadCodec(keys)] } }),
        taskQueue: 'ui-codec',
      });
      const secret = 'Pergunta sigilosa sobre o projeto Jacarandá';
      const handle = await batches.start([{ id: 'sigilo', messages: [{ role: 'user', content: secret }] }]);
      await waitFor(
        () => handle.progress(),
        (p) => p.status === 'awaiting_approval',
      );
      await page.goto(`${uiOrigin}/namespaces/default/workflows/${handle.batchId}`, { waitUntil: 'load' });
      const text = await waitFor(
        () => visibleText(page),
        (t) => t.includes(secret),
        { what: 'the decoded input in the UI', timeoutMs: 60_000 },
      );
      expect(text).toContain('sigilo');
      await page.screenshot({ path: path.join(ARTIFACTS, 'decoded-input.png'), fullPage: true });
      await handle.reject('test over');
      await handle.result();
    } finally {
      worker.shutdown();
      await running;
      await nativeConnection.close();
      await connection.close();
      await server.stop();
      await codecServer.close();
    }
  }, 180_000);
});
