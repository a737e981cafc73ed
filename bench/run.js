#!/usr/bin/env node
'use strict';
/**
 * Benchmarks against the alternatives, side by side in one process tree against one fake
 * Maritaca server, reported as ratios with median and spread. Writes bench/RESULTS.md.
 *
 *   npm run bench             quick (under 5 minutes)
 *   npm run bench -- --full   the sizes the README quotes
 *   npm run bench -- --only estimate-accuracy   one section (main, estimate-accuracy, temporal-cost;
 *                                               comma-separated)
 */
const { execFile, execFileSync, spawn } = require('node:child_process');
const { promisify } = require('node:util');
const execFileAsync = promisify(execFile);
const { existsSync, readFileSync } = require('node:fs');
const { writeSection } = require('./results-file');
const { runEstimateAccuracy } = require('./estimate-accuracy');
const { runTemporalCost } = require('./temporal-cost');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const OpenAI = require('openai').default;
const pLimit = require('p-limit');
const { Client, Connection } = require('@temporalio/client');
const { MaritacaBatchClient, estimateBatchCost, estimateInputOf } = require('../lib');
const { freePort, startDevServer, startFakeMaritaca } = require('../lib/testing');

const ROOT = path.join(__dirname, '..');
const CLI = path.join(ROOT, 'bin', 'maritaca-batch.js');
const PYTHON = path.join(ROOT, '.tools', 'bin', 'python');
const KEY = 'bench-key';
const LANGCHAIN_MARITACA_VERSION = '0.4.1';

const { values } = parseArgs({
  options: { full: { type: 'boolean', default: false }, only: { type: 'string' } },
});
const FULL = values.full;
const SIZES = FULL
  ? {
      window: 1000,
      windowReps: 5,
      overhead: 2000,
      overheadReps: 3,
      rpm: 600,
      rateMinutes: 3,
      estimate: 100_000,
    }
  : {
      window: 300,
      windowReps: 3,
      overhead: 1000,
      overheadReps: 2,
      rpm: 300,
      rateMinutes: 2,
      estimate: 100_000,
    };

/** CPU time (user + system) a process has used, in milliseconds (Linux). */
function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / 100;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** `median (min–max)` of a list of numbers. */
function spread(values, digits = 2) {
  return `${median(values).toFixed(digits)} (${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)})`;
}

function spawnProcess(args, env) {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const ready = new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => chunk.toString().includes('Worker polling') && resolve());
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}`)));
  });
  return { child, ready };
}

const questions = (n) =>
  Array.from({ length: n }, (_, i) => ({
    id: `q${i}`,
    messages: [{ role: 'user', content: `Pergunta ${i}` }],
    maxTokens: 30,
  }));

async function main() {
  const startedAt = new Date();
  const dev = await startDevServer({ port: await freePort(), uiPort: await freePort() });
  const fake = await startFakeMaritaca({ apiKey: KEY });
  const connection = await Connection.connect({ address: dev.address });
  const client = new Client({ connection });
  const workerEnv = (taskQueue) => ({
    TEMPORAL_ADDRESS: dev.address,
    TEMPORAL_TASK_QUEUE: taskQueue,
    MARITACA_API_KEY: KEY,
    MARITACA_BASE_URL: fake.url,
    MARITACA_RESULTS_DIR: path.join(os.tmpdir(), 'maritaca-bench-results'),
  });
  const batchWorker = spawnProcess([CLI, 'worker'], workerEnv('bench-batch'));
  const bareWorker = spawnProcess([path.join(__dirname, 'bare-worker.js')], workerEnv('bench-bare'));
  await Promise.all([batchWorker.ready, bareWorker.ready]);
  const batches = new MaritacaBatchClient({ client, taskQueue: 'bench-batch' });
  const openai = new OpenAI({ apiKey: KEY, baseURL: fake.url, maxRetries: 0 });
  const call = (r) =>
    openai.chat.completions.create({ model: 'sabia-4', messages: r.messages, max_tokens: r.maxTokens });
  const hasPython = pythonHasLangchain();
  const report = { window: {}, overhead: {}, rate: {}, estimate: {} };

  try {
    // 1. Window efficiency: long-tailed latency, the same seed for every contender.
    const n = SIZES.window;
    const times = { durable: [], pLimit: [], chunks: [], langchain: [] };
    for (let rep = 0; rep < SIZES.windowReps; rep++) {
      const configure = () => {
        fake.reset();
        fake.configure({ latencyMedianMs: 200, latencyP99Ms: 2000, latencyMs: null, seed: 1000 + rep });
      };
      configure();
      let t = Date.now();
      await (await batches.start(questions(n), { maxConcurrency: 10, autoApproveBelow: 1000 })).result();
      times.durable.push((Date.now() - t) / 1000);

      configure();
      const limit = pLimit(10);
      t = Date.now();
      await Promise.all(questions(n).map((r) => limit(() => call(r))));
      times.pLimit.push((Date.now() - t) / 1000);

      configure();
      t = Date.now();
      const all = questions(n);
      for (let i = 0; i < n; i += 10) await Promise.all(all.slice(i, i + 10).map(call));
      times.chunks.push((Date.now() - t) / 1000);

      if (hasPython) {
        configure();
        // Asynchronously: the fake server answering Python lives in this process's event loop.
        const { stdout: out } = await execFileAsync(PYTHON, [
          path.join(__dirname, 'langchain_batch.py'),
          '--base-url',
          fake.url,
          '--api-key',
          KEY,
          '--n',
          String(n),
          '--concurrency',
          '10',
        ]);
        times.langchain.push(JSON.parse(out.trim().split('\n').at(-1)).seconds);
      }
      console.log(
        `window rep ${rep + 1}: ${JSON.stringify(Object.fromEntries(Object.entries(times).map(([k, v]) => [k, v.at(-1)])))}`,
      );
    }
    const ratio = (a, b) => a.map((x, i) => x / b[i]);
    report.window = {
      n,
      times,
      durableOverPLimit: spread(ratio(times.durable, times.pLimit)),
      chunksOverPLimit: spread(ratio(times.chunks, times.pLimit)),
      langchainOverPLimit: hasPython
        ? spread(ratio(times.langchain, times.pLimit))
        : 'not run (no langchain-maritaca)',
      durableOverLangchain: hasPython ? spread(ratio(times.durable, times.langchain)) : 'not run',
    };

    // 2. Orchestration overhead: latency 0, the batch against a bare window of no-op activities.
    fake.configure({ latencyMedianMs: null, latencyP99Ms: null, latencyMs: null });
    const m = SIZES.overhead;
    const rps = { batch: [], bare: [] };
    const cpu = { batch: [], bare: [] };
    for (let rep = 0; rep < SIZES.overheadReps; rep++) {
      let before = cpuMs(batchWorker.child.pid);
      let t = Date.now();
      await (await batches.start(questions(m), { maxConcurrency: 50, autoApproveBelow: 1000 })).result();
      rps.batch.push((m * 1000) / (Date.now() - t));
      cpu.batch.push((cpuMs(batchWorker.child.pid) - before) / m);

      before = cpuMs(bareWorker.child.pid);
      t = Date.now();
      await client.workflow.execute('bareWindow', {
        taskQueue: 'bench-bare',
        workflowId: `bare-${Date.now()}`,
        args: [m, 50],
      });
      rps.bare.push((m * 1000) / (Date.now() - t));
      cpu.bare.push((cpuMs(bareWorker.child.pid) - before) / m);
      console.log(
        `overhead rep ${rep + 1}: batch ${rps.batch.at(-1).toFixed(0)} req/s, bare ${rps.bare.at(-1).toFixed(0)} act/s`,
      );
    }
    report.overhead = {
      m,
      batchRps: spread(rps.batch, 0),
      bareRps: spread(rps.bare, 0),
      batchOverBare: spread(ratio(rps.batch, rps.bare)),
      batchCpuMsPerRequest: spread(cpu.batch),
      bareCpuMsPerActivity: spread(cpu.bare),
    };

    // 3. Rate-limit closeness: the fake's RPM limit and the batch's rateLimit.rpm at the same value.
    fake.reset();
    fake.configure({ rpm: SIZES.rpm, latencyMs: 20 });
    const r = SIZES.rpm * SIZES.rateMinutes;
    let t = Date.now();
    await (
      await batches.start(questions(r), {
        maxConcurrency: 100,
        autoApproveBelow: 1000,
        rateLimit: { rpm: SIZES.rpm },
      })
    ).result();
    const elapsed = Date.now() - t;
    const steady = ((r - SIZES.rpm) * 60_000) / elapsed;
    report.rate = {
      rpm: SIZES.rpm,
      requests: r,
      elapsedS: elapsed / 1000,
      steadyRpm: steady,
      fraction: steady / SIZES.rpm,
      tooManyRequests: fake.stats().byStatus['429'] ?? 0,
    };
    fake.configure({ rpm: null, latencyMs: null });
    console.log(`rate: ${JSON.stringify(report.rate)}`);

    // 4. Estimate speed.
    const big = Array.from({ length: SIZES.estimate }, (_, i) => ({
      messages: [
        {
          role: 'system',
          content: 'Você é um assistente que responde em português do Brasil, de forma breve.',
        },
        {
          role: 'user',
          content: `Pergunta ${i}: explique em duas frases o que é a taxa Selic e como ela afeta a inflação.`,
        },
      ],
    }));
    const ms = [];
    for (let rep = 0; rep < 5; rep++) {
      t = performance.now();
      estimateBatchCost(estimateInputOf(big, {}));
      ms.push(performance.now() - t);
    }
    report.estimate = { requests: SIZES.estimate, ms: spread(ms, 0) };
  } finally {
    batchWorker.child.kill('SIGTERM');
    bareWorker.child.kill('SIGTERM');
    await connection.close();
    await fake.close();
    await dev.stop();
  }
  writeResults(report, startedAt);
}

/** The seed library in the tools venv, installed from PyPI when missing (like the Temporal CLI). */
function pythonHasLangchain() {
  const has = () => {
    try {
      execFileSync(PYTHON, ['-c', 'import langchain_maritaca'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  if (existsSync(PYTHON) && has()) return true;
  try {
    if (!existsSync(PYTHON))
      execFileSync(process.env.PYTHON ?? 'python3', ['-m', 'venv', path.join(ROOT, '.tools')]);
    console.log(
      `Installing langchain-maritaca==${LANGCHAIN_MARITACA_VERSION} into .tools for the comparison ...`,
    );
    execFileSync(
      PYTHON,
      ['-m', 'pip', 'install', '--quiet', `langchain-maritaca==${LANGCHAIN_MARITACA_VERSION}`],
      {
        stdio: 'inherit',
      },
    );
  } catch (err) {
    console.warn(`langchain-maritaca could not be installed (${err.message}); its row is skipped`);
    return false;
  }
  return has();
}

function writeResults(report, startedAt) {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  let langchainVersion = 'not installed';
  try {
    langchainVersion = execFileSync(PYTHON, [
      '-c',
      'import importlib.metadata as m; print(m.version("langchain-maritaca"))',
    ])
      .toString()
      .trim();
  } catch {
    // reported as not installed
  }
  const w = report.window;
  const o = report.overhead;
  const r = report.rate;
  const lines = [
    '# Benchmark results',
    '',
    `Run ${startedAt.toISOString()} with \`npm run bench${FULL ? ' -- --full' : ''}\` (${FULL ? 'full' : 'quick'} sizes).`,
    `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.platform()} ${os.release()}.`,
    `Versions: Node ${process.version}, ${pkg.name} ${pkg.version}, @temporalio/* ${pkg.dependencies['@temporalio/client']}, langchain-maritaca ${langchainVersion}; one Temporal dev server (in-memory), one fake Maritaca server.`,
    'Every figure is the median of the repetitions, with (min–max).',
    '',
    `## 1. Window efficiency (${w.n} requests, concurrency 10, latency log-normal: median 200 ms, p99 2 s)`,
    '',
    '| contender | wall time per run (s) | time / p-limit loop |',
    '| --- | --- | --- |',
    `| in-process \`p-limit\` loop (the non-durable ideal) | ${spread(w.times.pLimit)} | 1 |`,
    `| **durable batch workflow** | ${spread(w.times.durable)} | **${w.durableOverPLimit}** |`,
    `| fixed chunks of 10 with \`Promise.all\` | ${spread(w.times.chunks)} | ${w.chunksOverPLimit} |`,
    `| langchain-maritaca \`abatch_with_concurrency\` | ${w.times.langchain.length ? spread(w.times.langchain) : 'not run'} | ${w.langchainOverPLimit} |`,
    '',
    `Durable batch against the seed library: ${w.durableOverLangchain}.`,
    '',
    `## 2. Orchestration overhead (${o.m} requests, latency 0, concurrency 50)`,
    '',
    '| | throughput | worker CPU per request |',
    '| --- | --- | --- |',
    `| **batch workflow** | ${o.batchRps} req/s | ${o.batchCpuMsPerRequest} ms |`,
    `| bare window of no-op activities | ${o.bareRps} act/s | ${o.bareCpuMsPerActivity} ms |`,
    '',
    `Batch throughput / bare ceiling: **${o.batchOverBare}**.`,
    '',
    `## 3. Rate-limit closeness (limit ${r.rpm} RPM on the fake server and in \`rateLimit.rpm\`, ${r.requests} requests)`,
    '',
    `Requests per minute after the first minute's allowance: ${r.steadyRpm.toFixed(0)} = **${(100 * r.fraction).toFixed(1)}%** of the limit; 429 answers: **${r.tooManyRequests}**; elapsed ${r.elapsedS.toFixed(1)} s (single run).`,
    '',
    `## 4. Estimate speed`,
    '',
    `Estimating ${report.estimate.requests.toLocaleString('en')} two-message requests: **${report.estimate.ms} ms**.`,
    '',
  ];
  writeSection('main', lines.join('\n'));
  console.log(`\n${lines.join('\n')}`);
}

// Sections 1-4 (`main`) share one set of servers; each section writes its own part of RESULTS.md.
const SECTIONS = {
  main,
  'estimate-accuracy': () => runEstimateAccuracy(),
  'temporal-cost': () => runTemporalCost({ hasLangchain: pythonHasLangchain(), python: PYTHON }),
};

async function runSelected() {
  const names = values.only ? values.only.split(',') : Object.keys(SECTIONS);
  const unknown = names.filter((name) => !SECTIONS[name]);
  if (unknown.length > 0)
    throw new Error(
      `--only: unknown section ${unknown.join(', ')} (one of ${Object.keys(SECTIONS).join(', ')})`,
    );
  for (const name of names) await SECTIONS[name]();
}

runSelected().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
