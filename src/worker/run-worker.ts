import type { Duration } from '@temporalio/common';
import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { configFromEnv, type EnvironmentConfig } from './config';
import { MaritacaBatchPlugin } from './plugin';

/** Options of {@link runWorker}; anything unset comes from the environment. */
export interface RunWorkerOptions extends Partial<EnvironmentConfig> {
  /** Aborting it shuts the worker down gracefully. */
  signal?: AbortSignal;
  /**
   * `host:port` for a Prometheus `/metrics` endpoint with Temporal's runtime metrics (default
   * `MARITACA_METRICS_ADDRESS`; none when unset). Set before the first worker of the process.
   */
  metricsAddress?: string;
  /** How long calls in flight may take to finish on shutdown before they are cancelled (default 30 s). */
  shutdownGraceTime?: Duration;
  /** Called once the worker polls its task queue. */
  onReady?: (info: {
    address: string;
    namespace: string;
    taskQueue: string;
    baseURL: string;
    metricsAddress: string | undefined;
  }) => void;
}

/**
 * Connects to Temporal and runs a batch worker until `signal` aborts (or SIGINT/SIGTERM, which
 * the Temporal runtime handles by shutting down gracefully).
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
  const metricsAddress = options.metricsAddress ?? process.env.MARITACA_METRICS_ADDRESS?.trim();
  if (metricsAddress) {
    Runtime.install({ telemetryOptions: { metrics: { prometheus: { bindAddress: metricsAddress } } } });
  }
  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect({ address: config.address });
  } catch (err) {
    throw new Error(`Could not connect to Temporal at ${config.address}: ${(err as Error).message}`);
  }
  try {
    const worker = await Worker.create({
      connection,
      namespace: config.namespace,
      taskQueue: config.taskQueue,
      plugins: [new MaritacaBatchPlugin({ apiKey: config.apiKey, baseURL: config.baseURL })],
      // On SIGTERM (which the Temporal runtime turns into a shutdown) calls in flight get this long
      // to finish; the rest are cancelled and retried by another worker, so nothing is lost.
      shutdownGraceTime: options.shutdownGraceTime ?? '30 seconds',
    });
    const abort = () => worker.shutdown();
    options.signal?.addEventListener('abort', abort, { once: true });
    const running = worker.run();
    options.onReady?.({
      address: config.address,
      namespace: config.namespace,
      taskQueue: config.taskQueue,
      baseURL: config.baseURL,
      metricsAddress,
    });
    await running;
    options.signal?.removeEventListener('abort', abort);
  } finally {
    await connection.close();
  }
}
