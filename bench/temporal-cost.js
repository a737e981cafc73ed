#!/usr/bin/env node
'use strict';
/**
 * Temporal cost (issue 16), section 7 of bench/RESULTS.md: what the orchestration costs beside
 * the model, measured on whatever the batch workflow does today.
 *
 * - Actions per request, by type, from the dev server's own `action{action_type=...}` counter
 *   (`temporal server start-dev --metrics-port`): batches with a fixed fake latency of 1 s, 6 s
 *   and 30 s, each in a namespace of its own with its own CLI worker process, the counter read
 *   before and after the batch and only that namespace's labels kept. Priced at US$ 50 per
 *   million actions for 100,000 requests, beside Maritaca's price of the same batch.
 * - Latency per request slot: 300 requests, fixed 200 ms latency, concurrency 10, the durable
 *   batch against the ideal (300 / 10 × 0.2 s), the in-process `p-limit` loop and
 *   langchain-maritaca's `abatch_with_concurrency` (the same contenders as section 1).
 *
 * Run after `npm run build`:
 *
 *   npm run bench -- --only temporal-cost
 *   node bench/temporal-cost.js        (the same, without installing langchain-maritaca)
 */
const { execFile, execFileSync, spawn } = require('node:child_process');
const { existsSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { promisify } = require('node:util');
const { writeSection } = require('./results-file');

const execFileAsync = promisify(execFile);
const ROOT = path.join(__dirname, '..');
const CLI = path.join(ROOT, 'bin', 'maritaca-batch.js');
const PYTHON = path.join(ROOT, '.tools', 'bin', 'python');
const KEY = 'bench-key';

/** The batches whose actions are counted: fixed fake latency, requests, concurrency. */
const ACTION_RUNS = [
  { label: '1 s', latencyMs: 1000, requests: 60, concurrency: 20 },
  { label: '6 s', latencyMs: 6000, requests: 60, concurrency: 20 },
  // Fewer requests, so the section stays under about three minutes (two waves of 30 s).
  { label: '30 s', latencyMs: 30_000, requests: 40, concurrency: 20 },
];
/** The fixed-latency window row. */
const WINDOW = { latencyMs: 200, requests: 300, concurrency: 10, reps: 3 };
const WINDOW_IDEAL_S = (WINDOW.requests / WINDOW.concurrency) * (WINDOW.latencyMs / 1000);
const WINDOW_SLOTS = WINDOW.requests / WINDOW.concurrency;

/** Pricing of the comparison. */
const PRICING = {
  usdPerMillionActions: 50,
  batchRequests: 100_000,
  model: 'sabiazinho-4',
  inputTokens: 300,
  outputTokens: 300,
  brlPerMillionInput: 1,
  brlPerMillionOutput: 4,
  // Only to put the two bills in one currency; change it here if the rate has moved.
  brlPerUsd: 5.5,
};

/** Readable names of the server's action types (`service/frontend` telemetry interceptor). */
const ACTION_NAMES = {
  grpc_StartWorkflowExecution: 'workflow start',
  grpc_SignalWithStartWorkflowExecution: 'signal-with-start',
  grpc_ExecuteMultiOperation: 'update-with-start',
  grpc_SignalWorkflowExecution: 'signal',
  grpc_QueryWorkflow: 'query',
  'message_UpdateWorkflowExecution:Acceptance': 'update accepted',
  'message_UpdateWorkflowExecution:Rejection': 'update rejected',
  command_ScheduleActivityTask: 'activity scheduled',
  activity_retry: 'activity retried by the server',
  grpc_RecordActivityTaskHeartbeat: 'heartbeat',
  grpc_RecordActivityTaskHeartbeatById: 'heartbeat (by id)',
  command_StartTimer: 'timer',
  command_ContinueAsNewWorkflowExecution: 'continue-as-new',
  command_UpsertWorkflowSearchAttributes: 'search-attribute upsert',
  command_ModifyWorkflowProperties: 'memo upsert',
  command_RecordMarker: 'marker (local activity, patch)',
  command_BatchMarkers: 'markers of one workflow task',
  command_StartChildWorkflowExecution: 'child workflow',
  command_StartChildWorkflowExecution_Extra: 'child workflow (second action)',
  command_SignalExternalWorkflowExecution: 'signal to another workflow',
};
/**
 * The server counts each marker and, once per workflow task that has any, `command_BatchMarkers`;
 * Temporal Cloud bills the markers of one workflow task as one action, so the individual ones
 * are shown but not billed.
 */
const NOT_BILLED = new Set(['command_RecordMarker']);

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function spread(values, digits = 2) {
  return `${median(values).toFixed(digits)} (${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)})`;
}

/** Reads the dev server's Prometheus text. */
async function scrape(metricsUrl) {
  const response = await globalThis.fetch(metricsUrl);
  if (!response.ok) throw new Error(`${metricsUrl}: HTTP ${response.status}`);
  return response.text();
}

/**
 * The `action` counter summed per `action_type` over every other label, for one namespace.
 * The server's Prometheus reporter writes label values with `_` for every character outside
 * `[a-zA-Z0-9_]` (namespace `temporal-cost-1` is `namespace="temporal_cost_1"`).
 */
function actionsOf(text, namespace) {
  const label = namespace.replace(/[^a-zA-Z0-9_]/g, '_');
  const totals = {};
  for (const line of text.split('\n')) {
    const match = /^action(?:_total)?\{([^}]*)\}\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const [, key, value] of match[1].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key] = value;
    if (labels.namespace !== label) continue;
    const type = labels.action_type ?? '(none)';
    totals[type] = (totals[type] ?? 0) + Number(match[2]);
  }
  return totals;
}

function deltaOf(before, after) {
  const delta = {};
  for (const type of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const d = (after[type] ?? 0) - (before[type] ?? 0);
    if (d !== 0) delta[type] = d;
  }
  return delta;
}

const billedOf = (delta) =>
  Object.entries(delta).reduce((sum, [type, n]) => (NOT_BILLED.has(type) ? sum : sum + n), 0);

async function waitForMetrics(metricsUrl, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await scrape(metricsUrl);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** `maritaca-batch worker` in a namespace of its own; resolves once it polls. */
async function startWorker(env) {
  const child = spawn(process.execPath, [CLI, 'worker'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => chunk.toString().includes('Worker polling') && resolve());
    child.once('exit', (code) => reject(new Error(`worker exited ${code}`)));
  });
  return {
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** What the batch's history says it scheduled: activities by type, timers, markers by name. */
async function historyOf(handle) {
  const counts = { activities: {}, timers: 0, markers: {}, events: 0 };
  const { events } = await handle.workflowHandle.fetchHistory();
  for (const event of events ?? []) {
    counts.events++;
    const activity = event.activityTaskScheduledEventAttributes?.activityType?.name;
    if (activity) counts.activities[activity] = (counts.activities[activity] ?? 0) + 1;
    if (event.timerStartedEventAttributes) counts.timers++;
    const marker = event.markerRecordedEventAttributes?.markerName;
    if (marker) counts.markers[marker] = (counts.markers[marker] ?? 0) + 1;
  }
  return counts;
}

const questions = (n) =>
  Array.from({ length: n }, (_, i) => ({
    id: `q${i}`,
    messages: [{ role: 'user', content: `Pergunta ${i}` }],
    maxTokens: 30,
  }));

/**
 * One namespace, one CLI worker, one client: runs batches there and returns, per batch, its wall
 * time and the namespace's actions while it ran.
 */
async function inNamespace({ dev, fake, metricsUrl, namespace }, body) {
  const { Client, Connection } = require('@temporalio/client');
  const { MaritacaBatchClient } = require('../lib');
  const taskQueue = `bench-${namespace}`;
  const worker = await startWorker({
    TEMPORAL_ADDRESS: dev.address,
    TEMPORAL_NAMESPACE: namespace,
    TEMPORAL_TASK_QUEUE: taskQueue,
    MARITACA_API_KEY: KEY,
    MARITACA_BASE_URL: fake.url,
    MARITACA_RESULTS_DIR: path.join(os.tmpdir(), 'maritaca-bench-results'),
  });
  const connection = await Connection.connect({ address: dev.address });
  try {
    const batches = new MaritacaBatchClient({ client: new Client({ connection, namespace }), taskQueue });
    const runBatch = async (n, concurrency) => {
      const before = actionsOf(await scrape(metricsUrl), namespace);
      const started = Date.now();
      const handle = await batches.start(questions(n), {
        maxConcurrency: concurrency,
        autoApproveBelow: 1000,
      });
      const result = await handle.result();
      const wallS = (Date.now() - started) / 1000;
      // Every counted call has been answered before the result; a moment more costs nothing.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const actions = deltaOf(before, actionsOf(await scrape(metricsUrl), namespace));
      const succeeded = result.results.filter((r) => r.ok).length;
      return { wallS, actions, status: result.status, succeeded, history: await historyOf(handle) };
    };
    return await body(runBatch);
  } finally {
    await connection.close();
    await worker.stop();
  }
}

async function measure({ hasLangchain, python }) {
  const { freePort, startDevServer, startFakeMaritaca } = require('../lib/testing');
  const OpenAI = require('openai').default;
  const pLimit = require('p-limit');
  const metricsPort = await freePort();
  const namespaces = [...ACTION_RUNS.map((_, i) => `temporal-cost-${i + 1}`), 'temporal-cost-window'];
  const dev = await startDevServer({
    port: await freePort(),
    uiPort: await freePort(),
    extraArgs: ['--metrics-port', String(metricsPort), ...namespaces.flatMap((ns) => ['--namespace', ns])],
  });
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  const fake = await startFakeMaritaca({ apiKey: KEY });
  const report = { actionRuns: [], window: {}, idle: {} };
  try {
    await waitForMetrics(metricsUrl);
    // Nothing runs: whatever the server counts on its own in these namespaces shows here.
    const idleBefore = await scrape(metricsUrl);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const idleAfter = await scrape(metricsUrl);
    report.idle = Object.fromEntries(
      namespaces.map((ns) => [ns, billedOf(deltaOf(actionsOf(idleBefore, ns), actionsOf(idleAfter, ns)))]),
    );

    for (const [i, run] of ACTION_RUNS.entries()) {
      fake.reset();
      fake.configure({ latencyMedianMs: null, latencyP99Ms: null, latencyMs: run.latencyMs });
      const outcome = await inNamespace({ dev, fake, metricsUrl, namespace: namespaces[i] }, (runBatch) =>
        runBatch(run.requests, run.concurrency),
      );
      const row = { ...run, ...outcome, calls: fake.stats().totalRequests };
      report.actionRuns.push(row);
      console.log(`temporal cost ${run.label}: ${JSON.stringify(row)}`);
    }

    // The fixed-latency window: the durable batch, the p-limit loop, langchain-maritaca.
    const openai = new OpenAI({ apiKey: KEY, baseURL: fake.url, maxRetries: 0 });
    const call = (r) =>
      openai.chat.completions.create({ model: 'sabia-4', messages: r.messages, max_tokens: r.maxTokens });
    const times = { durable: [], pLimit: [], langchain: [] };
    const windowActions = [];
    const configure = () => {
      fake.reset();
      fake.configure({ latencyMedianMs: null, latencyP99Ms: null, latencyMs: WINDOW.latencyMs });
    };
    await inNamespace({ dev, fake, metricsUrl, namespace: 'temporal-cost-window' }, async (runBatch) => {
      // Untimed: the worker's first workflow task and first calls are not the steady state.
      configure();
      await runBatch(WINDOW.concurrency * 2, WINDOW.concurrency);
      for (let rep = 0; rep < WINDOW.reps; rep++) {
        configure();
        const batch = await runBatch(WINDOW.requests, WINDOW.concurrency);
        if (batch.succeeded !== WINDOW.requests)
          throw new Error(`window batch: ${batch.succeeded} succeeded`);
        times.durable.push(batch.wallS);
        windowActions.push(batch.actions);

        configure();
        const limit = pLimit(WINDOW.concurrency);
        let t = Date.now();
        await Promise.all(questions(WINDOW.requests).map((r) => limit(() => call(r))));
        times.pLimit.push((Date.now() - t) / 1000);

        if (hasLangchain) {
          configure();
          // Asynchronously: the fake server answering Python lives in this process's event loop.
          const { stdout } = await execFileAsync(python, [
            path.join(__dirname, 'langchain_batch.py'),
            '--base-url',
            fake.url,
            '--api-key',
            KEY,
            '--n',
            String(WINDOW.requests),
            '--concurrency',
            String(WINDOW.concurrency),
          ]);
          times.langchain.push(JSON.parse(stdout.trim().split('\n').at(-1)).seconds);
        }
        console.log(
          `fixed window rep ${rep + 1}: ${JSON.stringify(Object.fromEntries(Object.entries(times).map(([k, v]) => [k, v.at(-1)])))}`,
        );
      }
    });
    report.window = { times, actions: windowActions };
  } finally {
    await fake.close();
    await dev.stop();
  }
  return report;
}

const int = (n) => n.toLocaleString('en');
const perRequest = (n, requests) => (n / requests).toFixed(2);
const nameOf = (type) => (ACTION_NAMES[type] ? `${ACTION_NAMES[type]} (\`${type}\`)` : `\`${type}\``);

/** Actions that do not grow with the requests: all but heartbeats and Maritaca calls scheduled. */
function fixedOf(run) {
  const heartbeats =
    (run.actions.grpc_RecordActivityTaskHeartbeat ?? 0) +
    (run.actions.grpc_RecordActivityTaskHeartbeatById ?? 0);
  return billedOf(run.actions) - heartbeats - (run.history.activities.callMaritaca ?? 0);
}

function describeHistory(h) {
  const list = (counts) =>
    Object.entries(counts)
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(([name, n]) => `\`${name}\` ${n}`)
      .join(', ') || 'none';
  return `activities ${list(h.activities)}; timers ${h.timers}; markers ${list(h.markers)}; ${h.events} history events`;
}

function section({ startedAt, load, report, langchainVersion }) {
  const runs = report.actionRuns;
  const p = PRICING;
  const modelBrl =
    (p.batchRequests * (p.inputTokens * p.brlPerMillionInput + p.outputTokens * p.brlPerMillionOutput)) / 1e6;
  const types = [...new Set(runs.flatMap((r) => Object.keys(r.actions)))].sort(
    (a, b) => (runs[1]?.actions[b] ?? 0) - (runs[1]?.actions[a] ?? 0) || a.localeCompare(b),
  );
  const heads = runs.map((r) => `${r.label} calls (${r.requests} req, conc. ${r.concurrency})`);
  const windowBilled = report.window.actions.map(billedOf);
  const windowActionsPerRequest = windowBilled.map((n) => n / WINDOW.requests);
  const w = report.window.times;
  const slotMs = (seconds) => ((seconds - WINDOW_IDEAL_S) * 1000) / WINDOW_SLOTS;
  const windowRow = (label, values) =>
    values.length
      ? `| ${label} | ${spread(values)} | ${spread(values.map((s) => s / WINDOW_IDEAL_S))} | ${spread(values.map(slotMs), 1)} |`
      : `| ${label} | not run (no langchain-maritaca) | | |`;
  const idleTotal = Object.values(report.idle).reduce((a, b) => a + b, 0);
  const priceRows = runs.map((r) => {
    const billed = billedOf(r.actions);
    const usd = (billed / r.requests) * p.batchRequests * (p.usdPerMillionActions / 1e6);
    const share = (100 * usd * p.brlPerUsd) / modelBrl;
    return `| ${r.label} | ${perRequest(billed, r.requests)} | ${int(Math.round((billed / r.requests) * p.batchRequests))} | US$ ${usd.toFixed(2)} (R$ ${(usd * p.brlPerUsd).toFixed(2)}) | R$ ${modelBrl.toFixed(2)} | ${share.toFixed(1)}% |`;
  });
  return [
    '## 7. Temporal cost',
    '',
    `Run ${startedAt.toISOString()} by \`bench/temporal-cost.js\` (\`npm run bench -- --only temporal-cost\`) on ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, load average ${load.toFixed(1)} when it started. One Temporal dev server (in-memory, server defaults, started with \`--metrics-port\`), one fake Maritaca with a fixed latency, the CLI worker (\`maritaca-batch worker\`) as its own process; each batch auto-approved, in a namespace of its own with its own worker, nothing else running. Actions are the dev server's counter \`action{action_type=...}\` read from \`/metrics\` before and after the batch, summed over that namespace's other labels. With no batch running, the server counted ${idleTotal} actions in these namespaces in 3 s.`,
    '',
    '**Actions per request, by type** (single batch per column; the 30 s batch has 40 requests, two waves, to keep the section near three minutes):',
    '',
    `| action type | ${heads.join(' | ')} |`,
    `| --- | ${runs.map(() => '---').join(' | ')} |`,
    ...types.map(
      (type) =>
        `| ${nameOf(type)}${NOT_BILLED.has(type) ? ' — not billed, see below' : ''} | ${runs
          .map((r) =>
            r.actions[type] ? `${perRequest(r.actions[type], r.requests)} (${r.actions[type]})` : '0',
          )
          .join(' | ')} |`,
    ),
    `| **billed actions per request** | ${runs.map((r) => `**${perRequest(billedOf(r.actions), r.requests)}** (${billedOf(r.actions)})`).join(' | ')} |`,
    `| batch wall time | ${runs.map((r) => `${r.wallS.toFixed(1)} s`).join(' | ')} |`,
    `| status, succeeded, calls the fake answered | ${runs.map((r) => `${r.status}, ${r.succeeded}, ${r.calls}`).join(' | ')} |`,
    '',
    `Figures are actions per request (total in the batch). "Billed" is their sum, leaving out individual \`command_RecordMarker\` counts if a server lists them: markers (a local activity's result, a \`patched()\` call) are billed once per workflow task that has any, which the server counts as \`command_BatchMarkers\`. The fixed-latency window below (${WINDOW.requests} requests of ${WINDOW.latencyMs} ms) used ${spread(windowActionsPerRequest)} billed actions per request.`,
    '',
    "What each batch's history shows it scheduled:",
    '',
    ...runs.map((r) => `- ${r.label}: ${describeHistory(r.history)}.`),
    '',
    `**Price of ${int(p.batchRequests)} requests** at US$ ${p.usdPerMillionActions} per million actions, beside Maritaca's price of the same batch on ${p.model} (${p.inputTokens} tokens in, ${p.outputTokens} out, R$ ${p.brlPerMillionInput}/M in, R$ ${p.brlPerMillionOutput}/M out). Reais at R$ ${p.brlPerUsd.toFixed(2)} per US$ (an assumed rate, constant \`brlPerUsd\` in the file):`,
    '',
    '| call latency | billed actions / request | actions for the batch | Temporal Cloud | Maritaca (sabiazinho-4) | Temporal / Maritaca |',
    '| --- | --- | --- | --- | --- | --- |',
    ...priceRows,
    '',
    `The ${int(p.batchRequests)}-request figures scale each batch's actions per request linearly, so they also scale its fixed actions (all but heartbeats and \`callMaritaca\` schedules: ${runs.map((r) => `${fixedOf(r)} in the ${r.label} batch, ${perRequest(fixedOf(r), r.requests)} per request`).join('; ')}), which a large batch spreads thinner, and leave out the continue-as-new runs and page loads a batch that size adds (section 5 gives how many runs 100,000 requests take).`,
    '',
    `**Latency per request slot** (${WINDOW.requests} requests, fixed latency ${WINDOW.latencyMs} ms, concurrency ${WINDOW.concurrency}; ideal ${WINDOW.requests}/${WINDOW.concurrency} × ${(WINDOW.latencyMs / 1000).toFixed(1)} s = ${WINDOW_IDEAL_S.toFixed(1)} s; ${WINDOW.reps} repetitions after an untimed warm-up batch of ${WINDOW.concurrency * 2} requests, median (min–max)). Orchestration per slot = (wall − ideal) / ${WINDOW_SLOTS} slots.`,
    '',
    '| contender | wall time (s) | wall / ideal | orchestration per slot (ms) |',
    '| --- | --- | --- | --- |',
    `| ideal | ${WINDOW_IDEAL_S.toFixed(2)} | 1 | 0 |`,
    windowRow('in-process `p-limit` loop (the non-durable ideal)', w.pLimit),
    windowRow('**durable batch workflow**', w.durable),
    windowRow(`langchain-maritaca \`abatch_with_concurrency\` (${langchainVersion})`, w.langchain),
    '',
    `Durable batch / \`p-limit\` loop: ${spread(w.durable.map((s, i) => s / w.pLimit[i]))}.`,
    '',
  ].join('\n');
}

function langchainVersionOf(python) {
  try {
    return execFileSync(python, [
      '-c',
      'import importlib.metadata as m; print(m.version("langchain-maritaca"))',
    ])
      .toString()
      .trim();
  } catch {
    return 'not installed';
  }
}

function pythonHasLangchainAlready(python) {
  try {
    execFileSync(python, ['-c', 'import langchain_maritaca'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs the section and writes it into bench/RESULTS.md. `hasLangchain` says whether `python`
 * can import langchain-maritaca (the runner installs it first); without it, its row is not run.
 */
async function runTemporalCost({ hasLangchain, python = PYTHON } = {}) {
  const startedAt = new Date();
  const load = os.loadavg()[0];
  const withLangchain = hasLangchain ?? (existsSync(python) && pythonHasLangchainAlready(python));
  const report = await measure({ hasLangchain: withLangchain, python });
  const markdown = section({
    startedAt,
    load,
    report,
    langchainVersion: withLangchain ? langchainVersionOf(python) : 'not installed',
  });
  writeSection('temporal_cost', markdown);
  console.log(`\n${markdown}`);
  return report;
}

module.exports = { runTemporalCost, actionsOf };

if (require.main === module) {
  runTemporalCost().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
