#!/usr/bin/env node
'use strict';
/**
 * Scale: batches of 10,000 and 100,000 requests (fake latency 10 ms, concurrency 100) uploaded
 * with `startFromFile`, once through the local file store and once through the S3 store (the S3
 * test server), each with a fresh worker process, side by side in one run. Prints and writes to
 * bench/RESULTS.md, per size and store: total time against the ideal for that concurrency, runs
 * used, the largest history of a run, objects the batch leaves in the store, the time to read
 * every result back (`maritaca-batch results`, a separate client process), and the worker's and
 * that client's peak RSS. Run after `npm run build`:
 *
 *   node bench/scale.js [--sizes 10000,100000] [--stores file,s3] [--concurrency 100] [--latency-ms 10]
 */
const { spawn } = require('node:child_process');
const { mkdtempSync, readFileSync, writeFileSync, createReadStream } = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { pathToFileURL } = require('node:url');
const { parseArgs } = require('node:util');
const { Client, Connection } = require('@temporalio/client');
const { MaritacaBatchClient, storeFromUrl, toJsonlInputLines } = require('../lib');
const {
  createTestBucket,
  ensureMotoServer,
  freePort,
  startDevServer,
  startFakeMaritaca,
  startS3Server,
} = require('../lib/testing');
const { writeSection } = require('./results-file');

const CLI = path.join(__dirname, '..', 'bin', 'maritaca-batch.js');

/** A Linux process's resident set, in MiB: `VmRSS` now, or `VmHWM`, the peak since it started. */
function memoryMiB(pid, field = 'VmRSS') {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/** Samples a process's peak resident set until it exits. */
function trackPeak(child, field) {
  let peak = 0;
  const timer = setInterval(() => (peak = Math.max(peak, memoryMiB(child.pid, field))), 100);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, memoryMiB(child.pid, field));
    },
  };
}

async function countLines(file) {
  let n = 0;
  for await (const line of readline.createInterface({ input: createReadStream(file) })) if (line) n++;
  return n;
}

async function runSize({ size, storeKind, concurrency, latencyMs, address, fake, tmp, s3 }) {
  const taskQueue = `bench-scale-${storeKind}-${size}`;
  let storeUrl;
  const storeEnv = {};
  if (storeKind === 's3') {
    const bucket = `bench-scale-${size}`;
    await createTestBucket(s3.endpoint, bucket);
    storeUrl = `s3://${bucket}/batches`;
    Object.assign(storeEnv, {
      MARITACA_S3_ENDPOINT: s3.endpoint,
      AWS_ACCESS_KEY_ID: 'bench',
      AWS_SECRET_ACCESS_KEY: 'bench',
      AWS_REGION: 'us-east-1',
    });
  } else {
    storeUrl = pathToFileURL(path.join(tmp, `store-${size}`)).href;
  }
  const env = {
    ...process.env,
    ...storeEnv,
    MARITACA_STORE_URL: storeUrl,
    TEMPORAL_ADDRESS: address,
    TEMPORAL_TASK_QUEUE: taskQueue,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  Object.assign(process.env, storeEnv);
  const worker = spawn(process.execPath, [CLI, 'worker'], {
    env: { ...env, MARITACA_API_KEY: 'bench', MARITACA_BASE_URL: fake.url },
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
  const store = storeFromUrl(storeUrl, storeKind === 's3' ? { s3: { endpoint: s3.endpoint } } : {});
  const batches = new MaritacaBatchClient({ client, taskQueue, store });
  try {
    const uploadStarted = Date.now();
    const handle = await batches.startFromFile(file, { maxConcurrency: concurrency, autoApproveBelow: 1e6 });
    const uploadMs = Date.now() - uploadStarted;
    const started = Date.now();
    // Sampled while the batch runs, after the worker bundled its workflows (a one-off peak).
    const workerPeak = trackPeak(worker, 'VmRSS');
    const result = await handle.workflowHandle.result();
    const workerPeakRssMiB = workerPeak.stop();
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
    const objectsLeft = (await store.batchObjects(handle.batchId)).length;

    // Read every result back the way a user does, in a process of its own so its memory is its own.
    const out = path.join(tmp, `results-${storeKind}-${size}.jsonl`);
    const readStarted = Date.now();
    const reader = spawn(process.execPath, [CLI, 'results', handle.batchId, '-o', out], {
      env,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const readerPeak = trackPeak(reader, 'VmHWM');
    const code = await new Promise((resolve) => reader.once('exit', resolve));
    const clientPeakRssMiB = readerPeak.stop();
    const readBackS = (Date.now() - readStarted) / 1000;
    if (code !== 0) throw new Error(`results exited ${code}`);
    const resultsRead = await countLines(out);
    const idealMs = (size * latencyMs) / concurrency;
    return {
      size,
      store: storeKind,
      status: result.status,
      results: resultsRead,
      uploadS: uploadMs / 1000,
      elapsedS: elapsedMs / 1000,
      idealS: idealMs / 1000,
      ratio: elapsedMs / idealMs,
      requestsPerSecond: (size * 1000) / elapsedMs,
      runs: Math.max(runs, result.runs),
      largestEvents,
      largestBytes,
      objectsLeft,
      readBackS,
      workerPeakRssMiB,
      clientPeakRssMiB,
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
      stores: { type: 'string', default: 'file,s3' },
      concurrency: { type: 'string', default: '100' },
      'latency-ms': { type: 'string', default: '10' },
    },
  });
  const sizes = values.sizes.split(',').map(Number);
  const stores = values.stores.split(',');
  const concurrency = Number(values.concurrency);
  const latencyMs = Number(values['latency-ms']);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'maritaca-scale-'));
  const startedAt = new Date();
  const dev = await startDevServer({ port: await freePort(), uiPort: await freePort() });
  const fake = await startFakeMaritaca({ apiKey: 'bench', latencyMs });
  const s3 = stores.includes('s3')
    ? await startS3Server({ executable: await ensureMotoServer((line) => console.log(line)) })
    : undefined;
  try {
    const rows = [];
    for (const size of sizes) {
      for (const storeKind of stores) {
        const row = await runSize({
          size,
          storeKind,
          concurrency,
          latencyMs,
          address: dev.address,
          fake,
          tmp,
          s3,
        });
        rows.push(row);
        console.log(JSON.stringify(row));
      }
    }
    const table = [
      '| requests | store | time | time / ideal | req/s | upload | runs | largest run | objects left | read back | worker peak RSS | reader peak RSS |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|',
      ...rows.map(
        (r) =>
          `| ${r.size.toLocaleString('en')} | ${r.store} | ${r.elapsedS.toFixed(1)} s | ${r.ratio.toFixed(1)}x | ${r.requestsPerSecond.toFixed(0)} | ${r.uploadS.toFixed(1)} s | ${r.runs} | ${r.largestEvents} events, ${(r.largestBytes / 1024).toFixed(0)} KiB | ${r.objectsLeft} | ${r.readBackS.toFixed(1)} s (${r.results.toLocaleString('en')} results) | ${r.workerPeakRssMiB.toFixed(0)} MiB | ${r.clientPeakRssMiB.toFixed(0)} MiB |`,
      ),
    ];
    const pairs = sizes
      .map((size) => {
        const file = rows.find((r) => r.size === size && r.store === 'file');
        const s3Row = rows.find((r) => r.size === size && r.store === 's3');
        return file && s3Row
          ? `- ${size.toLocaleString('en')} requests: S3 store / file store time **${(s3Row.elapsedS / file.elapsedS).toFixed(2)}**, read back ${(s3Row.readBackS / file.readBackS).toFixed(2)}.`
          : undefined;
      })
      .filter(Boolean);
    const section = [
      `## 5. Scale through the batch store (fake latency ${latencyMs} ms, concurrency ${concurrency})`,
      '',
      `Run ${startedAt.toISOString()} with \`npm run bench:scale\` on ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; one dev server (in-memory), one fake Maritaca, the S3 test server (moto) on loopback. Single run per row. Ideal = requests × latency / concurrency. "read back" is \`maritaca-batch results ID -o file\` in its own process, which streams the outcomes.`,
      '',
      ...table,
      '',
      ...pairs,
      '',
    ].join('\n');
    console.log(`\n${section}`);
    writeSection('scale', section);
  } finally {
    await fake.close();
    await s3?.close();
    await dev.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
