'use strict';
// A worker for the bare-window workflow, run as its own process so its CPU time can be read.
const path = require('node:path');
const { DefaultLogger, NativeConnection, Runtime, Worker } = require('@temporalio/worker');

async function main() {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS });
  const worker = await Worker.create({
    connection,
    taskQueue: process.env.TEMPORAL_TASK_QUEUE,
    workflowsPath: path.join(__dirname, 'workflows', 'bare.js'),
    activities: { noop: async () => undefined },
  });
  const running = worker.run();
  console.log('Worker polling');
  await running;
  await connection.close();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
