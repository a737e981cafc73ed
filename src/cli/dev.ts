import path from 'node:path';
import { NativeConnection, Worker } from '@temporalio/worker';
import { DEFAULT_MARITACA_BASE_URL, DEFAULT_TASK_QUEUE } from '../shared';
import { startDevServer, waitForPort, type RunningDevServer } from '../testing/dev-server';
import { startFakeMaritaca, type FakeMaritacaServer } from '../testing/fake-maritaca';
import { packageRoot } from '../testing/temporal-cli';
import { MaritacaBatchPlugin } from '../worker';
import {
  createWorkerLogger,
  describeRetryableFailure,
  requestLogAttributes,
  type RetryableFailure,
} from '../worker/logging';
import { installRuntime } from '../worker/runtime';
import { createWorkerStopper, onShutdownSignals } from '../worker/shutdown-signals';

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
  /** Stops the stack when aborted (default: the first SIGINT/SIGTERM; a second one exits at once). */
  signal?: AbortSignal;
  /** Hears each 429, 5xx or dropped connection the worker retries (the worker logs them at DEBUG only). */
  onRetryableFailure?: (failure: RetryableFailure) => void;
}

/** Faults the demo's fake Maritaca server injects on purpose, to show retries and rate-limit holds. */
export interface InjectedFaults {
  /** Fraction of calls answered HTTP 500. */
  errorRate500: number;
  /** Fraction of calls answered 429. */
  errorRate429: number;
  /** The `Retry-After` of those 429s, in seconds. */
  retryAfterSeconds: number;
}

/** A stack the demo or `dev` started. */
export interface DevStack {
  address: string;
  uiUrl: string;
  baseURL: string;
  apiKey: string;
  taskQueue: string;
  /** What the fake server injects; absent when calling the real API. */
  injectedFaults?: InjectedFaults;
  /** What {@link DevStack.stop} does, for the line that says so ("draining the worker, stopping ..."). */
  stopDescription: string;
  /**
   * Drains the worker, then stops the fake server and the dev server this stack started. Safe to
   * call more than once, and after something else already shut the worker down.
   */
  stop(): Promise<void>;
}

/** Faults of the fake server `startDevStack` starts: rare enough to finish, frequent enough to be seen. */
const DEMO_FAULTS: InjectedFaults = { errorRate500: 0.05, errorRate429: 0.03, retryAfterSeconds: 1 };

async function listening(port: number): Promise<boolean> {
  try {
    await waitForPort('127.0.0.1', port, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The runtime and its logger live as long as the process; the stack started last decides who
 * hears the worker's retries.
 */
let retryListener: ((failure: RetryableFailure) => void) | undefined;
let runtimeInstalled = false;

function installDevRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  installRuntime({
    // WARN: the worker's own INFO lines would drown what the commands print.
    logger: createWorkerLogger('WARN', undefined, { onRetryableFailure: (f) => retryListener?.(f) }),
    // The commands stop the worker themselves, in order with the servers it needs and saying so.
    shutdownSignals: [],
  });
}

function joinWords(items: string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
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
  retryListener = options.onRetryableFailure;
  let devServer: RunningDevServer | undefined;
  let fake: FakeMaritacaServer | undefined;
  let connection: NativeConnection | undefined;
  const stopper = createWorkerStopper();
  let running: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;
  // Each step runs even when one before it failed: a worker that will not drain must not leave
  // the servers (and their ports) behind.
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      stopper.stop();
      await running?.catch(() => undefined);
      await connection?.close().catch(() => undefined);
      await fake?.close().catch(() => undefined);
      await devServer?.stop().catch(() => undefined);
    })();
    return stopping;
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
        errorRate500: DEMO_FAULTS.errorRate500,
        errorRate429: DEMO_FAULTS.errorRate429,
        retryAfterSeconds: DEMO_FAULTS.retryAfterSeconds,
        seed: 42,
      });
      baseURL = fake.url;
      log(`Fake Maritaca server at ${baseURL} (set MARITACA_API_KEY to use the real API)`);
    }
    installDevRuntime();
    connection = await NativeConnection.connect({ address });
    const worker = await Worker.create({
      connection,
      taskQueue,
      plugins: [new MaritacaBatchPlugin({ apiKey, baseURL }), stopper.plugin],
      interceptors: { activity: [requestLogAttributes] },
      // Ctrl-C must free the ports within seconds: calls still running after 2 s are cancelled
      // (the batch retries them on the next start), and a drain stuck past 6 s is cut short.
      shutdownGraceTime: '2 seconds',
      shutdownForceTime: '6 seconds',
    });
    running = worker.run();
    const servers: string[] = [];
    if (fake) servers.push('the fake server');
    if (devServer) servers.push('the Temporal dev server');
    const stopDescription = [
      'draining the worker',
      ...(servers.length ? [`stopping ${joinWords(servers)}`] : []),
    ].join(', ');
    return {
      address,
      uiUrl: `http://localhost:${uiPort}`,
      baseURL,
      apiKey,
      taskQueue,
      ...(fake ? { injectedFaults: DEMO_FAULTS } : {}),
      stopDescription,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Resolves `requested` on the first SIGINT or SIGTERM (or when `signal` aborts), after calling
 * `onStop` to say what is stopping; a second signal calls `onExit` and exits the process at once
 * (the dev server dies with it). Call `dispose` to stop listening.
 */
export function untilStopRequested(
  signal: AbortSignal | undefined,
  onStop: () => void,
  onExit?: () => void,
): { requested: Promise<void>; dispose: () => void } {
  let dispose = (): void => undefined;
  const requested = new Promise<void>((resolve) => {
    const first = () => {
      onStop();
      resolve();
    };
    if (signal) {
      if (signal.aborted) first();
      else signal.addEventListener('abort', first, { once: true });
      dispose = () => signal.removeEventListener('abort', first);
    } else {
      dispose = onShutdownSignals({ first, ...(onExit ? { second: onExit } : {}) });
    }
  });
  return { requested, dispose };
}

/**
 * The `dev` command: starts the stack and keeps it up until Ctrl-C (or `signal`), printing one
 * line per call the worker retries.
 */
export async function runDevStack(options: DevStackOptions = {}): Promise<void> {
  const log = options.log ?? ((line: string) => console.log(line));
  let stack: DevStack | undefined;
  const stop = untilStopRequested(
    options.signal,
    () => log(`Stopping: ${stack ? stack.stopDescription : 'everything, once it has started'} ...`),
    () => log('Exiting at once.'),
  );
  try {
    stack = await startDevStack({
      ...options,
      log,
      onRetryableFailure: options.onRetryableFailure ?? ((f) => log(describeRetryableFailure(f))),
    });
    log(`Temporal at ${stack.address}, UI at ${stack.uiUrl}, worker on task queue "${stack.taskQueue}"`);
    log(
      `Try: maritaca-batch submit requests.jsonl --address ${stack.address} --task-queue ${stack.taskQueue}`,
    );
    log('Press Ctrl-C to stop.');
    await stop.requested;
    await stack.stop();
    log('Stopped.');
  } finally {
    stop.dispose();
  }
}
