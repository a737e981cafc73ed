#!/usr/bin/env node
'use strict';
/**
 * Rate-limit closeness: a batch with `rateLimit.rpm` equal to the fake server's RPM limit.
 * Prints the achieved requests per minute after the first minute's allowance, as a fraction of
 * the limit, and how many 429s came back. Run after `npm run build`:
 *
 *   node bench/rate-limit.js [--rpm 600] [--minutes 3]
 */
const { parseArgs } = require('node:util');
const { Client, Connection } = require('@temporalio/client');
const { DefaultLogger, NativeConnection, Runtime, Worker } = require('@temporalio/worker');
const { MaritacaBatchClient, MaritacaBatchPlugin } = require('../lib');
const { freePort, startDevServer, startFakeMaritaca } = require('../lib/testing');

async function main() {
  const { values } = parseArgs({
    options: { rpm: { type: 'string', default: '600' }, minutes: { type: 'string', default: '3' } },
  });
  const rpm = Number(values.rpm);
  const minutes = Number(values.minutes);
  const total = rpm * minutes;
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const dev = await startDevServer({ port: await freePort(), uiPort: await freePort() });
  const fake = await startFakeMaritaca({ apiKey: 'bench', rpm, latencyMs: 20 });
  const nativeConnection = await NativeConnection.connect({ address: dev.address });
  const worker = await Worker.create({
    connection: nativeConnection,
    taskQueue: 'bench-rate-limit',
    plugins: [new MaritacaBatchPlugin({ apiKey: 'bench', baseURL: fake.url })],
  });
  const running = worker.run();
  const connection = await Connection.connect({ address: dev.address });
  const batches = new MaritacaBatchClient({
    client: new Client({ connection }),
    taskQueue: 'bench-rate-limit',
  });
  try {
    const requests = Array.from({ length: total }, (_, i) => ({
      id: `r${i}`,
      messages: [{ role: 'user', content: `Pergunta ${i}` }],
      maxTokens: 20,
    }));
    const handle = await batches.start(requests, {
      maxConcurrency: 100,
      autoApproveBelow: 1000,
      rateLimit: { rpm },
    });
    const started = Date.now();
    const result = await handle.result();
    const elapsedMs = Date.now() - started;
    const stats = fake.stats();
    // The first minute's allowance goes out at once; the limit shows in what follows it.
    const steadyRpm = ((total - rpm) * 60_000) / elapsedMs;
    const lines = [
      `rate limit ${rpm} RPM, ${total} requests, status ${result.status}`,
      `elapsed ${(elapsedMs / 1000).toFixed(1)} s; requests after the first minute's allowance: ${steadyRpm.toFixed(0)} RPM = ${((100 * steadyRpm) / rpm).toFixed(1)}% of the limit`,
      `429 answers: ${stats.byStatus['429'] ?? 0}; requests sent: ${stats.totalRequests}`,
    ];
    console.log(lines.join('\n'));
  } finally {
    worker.shutdown();
    await running;
    await nativeConnection.close();
    await connection.close();
    await fake.close();
    await dev.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
