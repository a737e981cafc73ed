#!/usr/bin/env node
'use strict';
/**
 * Scale: batches of 10,000 and 100,000 requests (fake latency 10 ms, concurrency 100) read from a
 * JSONL source, each with a fresh worker process. Prints, per size: total time against the ideal
 * for that concurrency, runs used, the largest history of a run (events and bytes), and the
 * worker's peak RSS, so growth with size is visible. Run after `npm run build`:
 *
 *   node bench/scale.js [--sizes 10000,100000] [--concurrency 100] [--latency-ms 10]
 */
const { spawn } = require('node:child_process');
const { mkdtempSync, readFileSync, writeFileSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { Client, Connection } = require('@temporalio/client');
const { MaritacaBatchClient, toJsonlInputLines } = require('../lib');
const { freePort, startDevServer, startFakeMaritaca } = require('../lib/testing');

const CLI = path.join(__dirname, '..', 'bin', 'maritaca-batch.js');

/** Current resident set of a process (Linux), in MiB. */
function rssMiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

async function runSize({ size, concurrency, latencyMs, address, fake, tmp }) {
  const taskQueue = `bench-scale-${size}`;
  const worker = spawn(process.execPath, [CLI, 'worker'], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: address,
      TEMPORAL_TASK_QUEUE: taskQueue,
      MARITACA_API_KEY: 'bench',
      MARITACA_BASE_URL: fake.url,
      MARITACA_RESULTS_DIR: path.join(tmp, 'results'),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve, reject) => {
    worker.stdout.on('data', (chunk) => chunk.toString().includes('Worker polling') && resolve());
    worker.once('exit', (code) => reject(new Error(`worker exited ${code}`)));
  });
  const file = path.join(tmp, `requests-${size}.jsonl`);
  const requests = Array.from({ length: size }, (_, i) => ({
    id: `r${i}`,
    messages: [{ role: 'user', content: `Pergunta ${i}: qual é a capital do estado número ${i % 27}?` }],
    maxTokens: 20,
  }));
  writeFileSync(file, toJsonlInputLines(requests, 'short'));
  const connection = await Connection.connect({ address });
  const client = new Client({ connection });
  const batches = new MaritacaBatchClient({ client, taskQueue });
  try {
    const handle = await batches.startFromFile(file, { maxConcurrency: concurrency, autoApproveBelow: 1e6 });
    const started = Date.now();
    // Sampled while the batch runs, after the worker bundled its workflows (a one-off peak).
    let peakRss = rssMiB(worker.pid);
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssMiB(worker.pid))), 250);
    const result = await handle.workflowHandle.result().finally(() => clearInterval(sampler));
    const elapsedMs = Date.now() - started;
    let largestEvents = 0;
    let largestBytes = 0;
    let runs = 0;
    for await (const execution of client.workflow.list({ query: `WorkflowId = "${handle.batchId}"` })) {
      const described = await client.workflow.getHandle(handle.batchId, execution.runId).describe();
      runs++;
      largestEvents = Math.max(largestEvents, described.historyLength);
      largestBytes = Math.max(largestBytes, described.historySize);
    }
    const stored = (await batches.getHandle(handle.batchId).result()).results;
    const idealMs = (size * latencyMs) / concurrency;
    return {
      size,
      status: result.status,
      results: stored.length,
      elapsedS: elapsedMs / 1000,
      idealS: idealMs / 1000,
      ratio: elapsedMs / idealMs,
      requestsPerSecond: (size * 1000) / elapsedMs,
      runs: Math.max(runs, result.runs),
      largestEvents,
      largestBytes,
      workerPeakRssMiB: peakRss,
    };
  } finally {
    worker.kill('SIGTERM');
    await new Promise((resolve) => worker.once('exit', resolve));
    await connection.close();
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '10000,100000' },
      concurrency: { type: 'string', default: '100' },
      'latency-ms': { type: 'string', default: '10' },
    },
  });
  const sizes = values.sizes.split(',').map(Number);
  const concurrency = Number(values.concurrency);
  const latencyMs = Number(values['latency-ms']);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'maritaca-scale-'));
  const dev = await startDevServer({ port: await freePort(), uiPort: await freePort() });
  const fake = await startFakeMaritaca({ apiKey: 'bench', latencyMs });
  try {
    const rows = [];
    for (const size of sizes) {
      const row = await runSize({ size, concurrency, latencyMs, address: dev.address, fake, tmp });
      rows.push(row);
      console.log(JSON.stringify(row));
    }
    console.log(
      '\n| requests | time | ideal | time / ideal | req/s | runs | largest run (events) | largest run (bytes) | worker peak RSS |',
    );
    console.log('|---|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      console.log(
        `| ${r.size} | ${r.elapsedS.toFixed(1)} s | ${r.idealS.toFixed(1)} s | ${r.ratio.toFixed(1)}x | ${r.requestsPerSecond.toFixed(0)} | ${r.runs} | ${r.largestEvents} | ${(r.largestBytes / 1024).toFixed(0)} KiB | ${r.workerPeakRssMiB.toFixed(0)} MiB |`,
      );
    }
  } finally {
    await fake.close();
    await dev.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
