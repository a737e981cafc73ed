import os from 'node:os';
import type { Worker, WorkerPlugin } from '@temporalio/worker';

/** The signals a person or a process manager stops a command with. */
export const SHUTDOWN_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];

/** What {@link onShutdownSignals} does on each signal. */
export interface ShutdownSignalHandlers {
  /** The first SIGINT or SIGTERM: start stopping gracefully (say so, drain, stop the servers). */
  first(signal: NodeJS.Signals): void;
  /**
   * A second signal, just before the process exits at once with 128 + the signal's number. It
   * must be synchronous; children spawned through `startDevServer` are killed on exit anyway.
   */
  second?(signal: NodeJS.Signals): void;
}

/**
 * Listens for SIGINT and SIGTERM for a command that owns its process: the first one starts a
 * graceful stop, a second one ends the process at once, as an impatient person expects.
 * Returns a function that stops listening.
 */
export function onShutdownSignals(handlers: ShutdownSignalHandlers): () => void {
  let received = false;
  const listener = (signal: NodeJS.Signals): void => {
    if (!received) {
      received = true;
      handlers.first(signal);
      return;
    }
    handlers.second?.(signal);
    process.exit(128 + (os.constants.signals[signal] ?? 0));
  };
  for (const signal of SHUTDOWN_SIGNALS) process.on(signal, listener);
  return () => {
    for (const signal of SHUTDOWN_SIGNALS) process.off(signal, listener);
  };
}

/** Stops one worker once, whenever asked (see {@link createWorkerStopper}). */
export interface WorkerStopper {
  /** A worker plugin that sees the worker start polling; it must come last in `plugins`. */
  plugin: WorkerPlugin;
  /** Starts the worker's graceful shutdown now, or as soon as it starts polling; never throws. */
  stop(): void;
}

/**
 * `worker.shutdown()` throws unless the worker is RUNNING, and `run()` only makes it RUNNING
 * after the plugins' own start-up work (the batch plugin checks the namespace first): a Ctrl-C
 * in that window, or after the runtime or an abort already began the shutdown, would be lost
 * or throw. The stopper remembers the request and acts on it once the worker runs.
 * `onRunning` is called when the worker starts polling.
 */
export function createWorkerStopper(onRunning?: () => void): WorkerStopper {
  let requested = false;
  let running: Worker | undefined;
  const shutdown = (worker: Worker): void => {
    if (worker.getState() !== 'RUNNING') return;
    try {
      worker.shutdown();
    } catch {
      // Another path started the shutdown in between: draining goes on all the same.
    }
  };
  return {
    plugin: {
      name: 'temporal-maritaca-batch-stopper',
      runWorker(worker, next) {
        // The innermost plugin calls the SDK's run, which makes the worker RUNNING before its first await.
        const run = next(worker);
        running = worker;
        if (requested) shutdown(worker);
        else onRunning?.();
        return run;
      },
    },
    stop() {
      requested = true;
      if (running) shutdown(running);
    },
  };
}
