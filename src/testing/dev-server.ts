import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { BATCH_SEARCH_ATTRIBUTES } from '../shared/search-attributes';
import { ensureTemporalCli } from './temporal-cli';

/** Options of {@link startDevServer}. */
export interface DevServerOptions {
  /** gRPC port (default 7233). */
  port?: number;
  /** Web UI port (default 8233). */
  uiPort?: number;
  /** SQLite file that keeps the server's state across restarts; in-memory when absent. */
  dbFilename?: string;
  /** Namespace to create (default `default`). */
  namespace?: string;
  /** Extra arguments for `temporal server start-dev` (the batch search attributes are always registered). */
  extraArgs?: string[];
  /** Where progress lines go. */
  log?: (line: string) => void;
  /** How long to wait for the server to accept connections (default 60 s). */
  readyTimeoutMs?: number;
}

/** A running `temporal server start-dev`. */
export interface RunningDevServer {
  /** `host:port` of the frontend. */
  address: string;
  /** URL of the web UI. */
  uiUrl: string;
  /** The server process. */
  process: ChildProcess;
  /** Stops the server and waits for it to exit (at most about 5 s); safe to call more than once. */
  stop(): Promise<void>;
}

/** A TCP port on 127.0.0.1 that nothing listens on right now (for test and benchmark servers). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on host:port, or rejects after `timeoutMs`. */
export async function waitForPort(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`Nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Dynamic config that lets the server hand a Maritaca call straight back to the worker that
 * scheduled it (eager activity dispatch): one round trip less per request.
 */
export const EAGER_ACTIVITIES_ARGS = ['--dynamic-config-value', 'system.enableActivityEagerExecution=true'];

/**
 * Starts the Temporal CLI's dev server (installing the CLI if needed) and waits until it
 * accepts connections. Used by the demo and the `dev` command; tests use `TestWorkflowEnvironment`.
 */
export async function startDevServer(options: DevServerOptions = {}): Promise<RunningDevServer> {
  const log = options.log ?? (() => undefined);
  const cli = await ensureTemporalCli(log);
  const port = options.port ?? 7233;
  const uiPort = options.uiPort ?? 8233;
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--ui-port',
    String(uiPort),
    '--namespace',
    options.namespace ?? 'default',
    '--log-level',
    'error',
  ];
  if (options.dbFilename) {
    mkdirSync(path.dirname(options.dbFilename), { recursive: true });
    args.push('--db-filename', options.dbFilename);
  }
  for (const { key, cliType } of BATCH_SEARCH_ATTRIBUTES)
    args.push('--search-attribute', `${key.name}=${cliType}`);
  args.push(...EAGER_ACTIVITIES_ARGS);
  args.push(...(options.extraArgs ?? []));
  // Its own process group: a Ctrl-C in the terminal then reaches only the command, which stops the
  // server after the worker has drained instead of having it vanish under the worker's feet.
  const [command, commandArgs] = diesWithParent(cli, args);
  const child = spawn(command, commandArgs, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  // Whatever way this process ends (a second Ctrl-C, process.exit, a crash), the server goes too.
  const killOnExit = () => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      process.off('exit', killOnExit);
      resolve(code);
    }),
  );
  try {
    await Promise.race([
      waitForPort('127.0.0.1', port, options.readyTimeoutMs ?? 60_000),
      exited.then((code) => {
        throw new Error(`temporal server start-dev exited with code ${code}: ${stderr.trim()}`);
      }),
    ]);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  let stopping: Promise<void> | undefined;
  return {
    address: `127.0.0.1:${port}`,
    uiUrl: `http://localhost:${uiPort}`,
    process: child,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        // It exits within about a second; one that hangs must not hold a command's shutdown.
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
}

/**
 * On Linux, runs the command under `setpriv --pdeathsig TERM` (util-linux) when available, so the
 * kernel stops the server even if this process is killed with SIGKILL and no exit hook runs. The
 * kernel watches the thread that spawned it: the main thread, unless called from a worker thread.
 */
function diesWithParent(command: string, args: string[]): [string, string[]] {
  if (process.platform !== 'linux') return [command, args];
  const setpriv = findOnPath('setpriv');
  return setpriv ? [setpriv, ['--pdeathsig', 'TERM', '--', command, ...args]] : [command, args];
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // Not in this directory.
    }
  }
  return undefined;
}
