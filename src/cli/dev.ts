import path from 'node:path';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { DEFAULT_MARITACA_BASE_URL, DEFAULT_TASK_QUEUE } from '../shared';
import { startDevServer, waitForPort, type RunningDevServer } from '../testing/dev-server';
import { startFakeMaritaca, type FakeMaritacaServer } from '../testing/fake-maritaca';
import { packageRoot } from '../testing/temporal-cli';
import { MaritacaBatchPlugin } from '../worker';

/** Options of {@link runDevStack}. */
export interface DevStackOptions {
  /** Temporal gRPC port (default 7233). */
  port?: number;
  /** Temporal UI port (default 8233). */
  uiPort?: number;
  /** Fake Maritaca port (default 8090). */
  fakePort?: number;
  /** Task queue of the worker (default `TEMPORAL_TASK_QUEUE`, then `maritaca-batch`). */
  taskQueue?: string;
  /** SQLite file of the dev server (default `.temporal/dev.db` in the package). */
  dbFilename?: string;
  /** Where output lines go (default console.log). */
  log?: (line: string) => void;
  /** Stops the stack when aborted (default: SIGINT/SIGTERM). */
  signal?: AbortSignal;
}

/** A stack the demo or `dev` started. */
export interface DevStack {
  address: string;
  uiUrl: string;
  baseURL: string;
  apiKey: string;
  taskQueue: string;
  stop(): Promise<void>;
}

async function listening(port: number): Promise<boolean> {
  try {
    await waitForPort('127.0.0.1', port, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts what a batch needs on one machine: the Temporal dev server (reused when one already
 * listens on the port), the fake Maritaca server unless `MARITACA_API_KEY` is set, and a worker.
 */
export async function startDevStack(options: DevStackOptions = {}): Promise<DevStack> {
  const log = options.log ?? ((line: string) => console.log(line));
  const port = options.port ?? 7233;
  const uiPort = options.uiPort ?? 8233;
  const taskQueue = options.taskQueue ?? process.env.TEMPORAL_TASK_QUEUE ?? DEFAULT_TASK_QUEUE;
  let devServer: RunningDevServer | undefined;
  let fake: FakeMaritacaServer | undefined;
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  const stop = async () => {
    worker?.shutdown();
    await running?.catch(() => undefined);
    await fake?.close();
    await devServer?.stop();
  };
  try {
    if (await listening(port)) {
      log(`Using the Temporal server already listening on 127.0.0.1:${port}`);
    } else {
      log('Starting the Temporal dev server ...');
      devServer = await startDevServer({
        port,
        uiPort,
        dbFilename: options.dbFilename ?? path.join(packageRoot(), '.temporal', 'dev.db'),
        log,
      });
    }
    const address = `127.0.0.1:${port}`;
    let apiKey = process.env.MARITACA_API_KEY?.trim();
    let baseURL = process.env.MARITACA_BASE_URL?.trim() || DEFAULT_MARITACA_BASE_URL;
    if (apiKey) {
      log(`MARITACA_API_KEY is set: calling the real API at ${baseURL}`);
    } else {
      apiKey = 'demo-key';
      fake = await startFakeMaritaca({
        apiKey,
        port: options.fakePort ?? 0,
        latencyMedianMs: 700,
        latencyP99Ms: 4000,
        errorRate500: 0.05,
        errorRate429: 0.03,
        seed: 42,
      });
      baseURL = fake.url;
      log(`Fake Maritaca server at ${baseURL} (set MARITACA_API_KEY to use the real API)`);
    }
    // The worker's own INFO lines would drown what the commands print.
    if (!runtimeInstalled) {
      Runtime.install({ logger: new DefaultLogger('WARN') });
      runtimeInstalled = true;
    }
    const connection = await NativeConnection.connect({ address });
    worker = await Worker.create({
      connection,
      taskQueue,
      plugins: [new MaritacaBatchPlugin({ apiKey, baseURL })],
    });
    running = worker.run().finally(() => connection.close());
    return { address, uiUrl: `http://localhost:${uiPort}`, baseURL, apiKey, taskQueue, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

let runtimeInstalled = false;

/** The `dev` command: starts the stack and keeps it up until Ctrl-C (or `signal`). */
export async function runDevStack(options: DevStackOptions = {}): Promise<void> {
  const log = options.log ?? ((line: string) => console.log(line));
  const stack = await startDevStack(options);
  log(`Temporal at ${stack.address}, UI at ${stack.uiUrl}, worker on task queue "${stack.taskQueue}"`);
  log(`Try: maritaca-batch submit requests.jsonl --address ${stack.address} --task-queue ${stack.taskQueue}`);
  log('Press Ctrl-C to stop.');
  await new Promise<void>((resolve) => {
    if (options.signal) options.signal.addEventListener('abort', () => resolve(), { once: true });
    else {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    }
  });
  await stack.stop();
}
