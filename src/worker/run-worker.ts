import type { Duration } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import { parsePriceTable, type PriceTable } from '../shared';
import { loadPriceTable } from '../pricing';
import { configFromEnv, type EnvironmentConfig } from './config';
import { createWorkerLogger, requestLogAttributes } from './logging';
import { MaritacaBatchPlugin } from './plugin';
import { installRuntime } from './runtime';
import { createWorkerStopper, onShutdownSignals } from './shutdown-signals';

/** Options of {@link runWorker}; anything unset comes from the environment. */
export interface RunWorkerOptions extends Partial<EnvironmentConfig> {
  /** Aborting it shuts the worker down gracefully. */
  signal?: AbortSignal;
  /**
   * Stop on SIGINT and SIGTERM (default true): the first one drains the worker, saying so in one
   * line, and `runWorker` resolves once it stopped; a second one exits the process at once.
   */
  handleSignals?: boolean;
  /** Where the stopping lines go (default console.log). */
  log?: (line: string) => void;
  /**
   * `host:port` for a Prometheus `/metrics` endpoint with Temporal's runtime metrics (default
   * `MARITACA_METRICS_ADDRESS`; none when unset). Set before the first worker of the process.
   */
  metricsAddress?: string;
  /** How long calls in flight may take to finish on shutdown before they are cancelled (default 30 s). */
  shutdownGraceTime?: Duration;
  /** The price table (default: `MARITACA_PRICES_FILE` merged over the built-in table, else built-in). */
  prices?: PriceTable;
  /** Called once the worker polls its task queue. */
  onReady?: (info: {
    address: string;
    namespace: string;
    taskQueue: string;
    baseURL: string;
    metricsAddress: string | undefined;
    /** When the prices in use were last checked (`YYYY-MM-DD`). */
    pricesCheckedOn: string;
  }) => void;
}

/**
 * Connects to Temporal and runs a batch worker until `signal` aborts or the process gets SIGINT
 * or SIGTERM (see `handleSignals`). Installs a Runtime whose logger keeps the retries of 429s and
 * 5xx out of the warnings (see `createWorkerLogger`), unless the process already has a Runtime.
 */
export async function runWorker(options: RunWorkerOptions = {}): Promise<void> {
  const env = configFromEnv();
  const config: EnvironmentConfig = {
    address: options.address ?? env.address,
    namespace: options.namespace ?? env.namespace,
    taskQueue: options.taskQueue ?? env.taskQueue,
    apiKey: options.apiKey ?? env.apiKey,
    baseURL: options.baseURL ?? env.baseURL,
  };
  if (!config.apiKey) {
    throw new Error('MARITACA_API_KEY is not set: the worker needs a Maritaca API key to call the API');
  }
  // Before anything connects: a worker that would misprice every batch must not start.
  const prices = options.prices ? parsePriceTable(options.prices, 'prices option') : loadPriceTable();
  const log = options.log ?? ((line: string) => console.log(line));
  const handleSignals = options.handleSignals ?? true;
  const metricsAddress = options.metricsAddress ?? process.env.MARITACA_METRICS_ADDRESS?.trim();
  const installed = installRuntime({
    logger: createWorkerLogger('INFO'),
    // This function stops the worker itself on a signal, saying so; the runtime's own handling
    // would shut it down a second time behind its back.
    ...(handleSignals ? { shutdownSignals: [] } : {}),
    ...(metricsAddress
      ? { telemetryOptions: { metrics: { prometheus: { bindAddress: metricsAddress } } } }
      : {}),
  });
  if (!installed && metricsAddress) {
    throw new Error(
      `Cannot serve metrics on ${metricsAddress}: this process already has a Temporal Runtime; install it with the metrics options instead`,
    );
  }
  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect({ address: config.address });
  } catch (err) {
    throw new Error(`Could not connect to Temporal at ${config.address}: ${(err as Error).message}`);
  }
  const graceTime = options.shutdownGraceTime ?? '30 seconds';
  const stopper = createWorkerStopper(() =>
    options.onReady?.({
      address: config.address,
      namespace: config.namespace,
      taskQueue: config.taskQueue,
      baseURL: config.baseURL,
      metricsAddress,
      pricesCheckedOn: prices.checkedOn,
    }),
  );
  let stopListening = (): void => undefined;
  let signalled = false;
  try {
    if (options.signal?.aborted) stopper.stop();
    options.signal?.addEventListener('abort', stopper.stop, { once: true });
    if (handleSignals) {
      stopListening = onShutdownSignals({
        first: (signal) => {
          signalled = true;
          const grace = typeof graceTime === 'number' ? `${graceTime} ms` : graceTime;
          log(
            `Stopping (${signal}): draining the worker, calls in flight get up to ${grace}; a second signal exits at once ...`,
          );
          stopper.stop();
        },
        second: () => log('Exiting at once: unfinished calls will be retried by the next worker.'),
      });
    }
    const worker = await Worker.create({
      connection,
      namespace: config.namespace,
      taskQueue: config.taskQueue,
      plugins: [
        new MaritacaBatchPlugin({ apiKey: config.apiKey, baseURL: config.baseURL, prices }),
        stopper.plugin,
      ],
      interceptors: { activity: [requestLogAttributes] },
      // On shutdown, calls in flight get this long to finish; the rest are cancelled and retried
      // by another worker, so nothing is lost.
      shutdownGraceTime: graceTime,
    });
    await worker.run();
  } finally {
    options.signal?.removeEventListener('abort', stopper.stop);
    stopListening();
    await connection.close();
  }
  if (signalled) log('Stopped.');
}
