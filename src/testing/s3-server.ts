import { spawn } from 'node:child_process';
import http from 'node:http';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort } from './dev-server';
import { findTool, installIntoToolsVenv } from './tools-venv';

/**
 * Version of `moto[server]` installed from PyPI when no S3 test server is found. Pinned so every
 * machine runs the same S3 emulation: moto's coverage of S3 features changes between releases.
 */
export const MOTO_VERSION = '5.2.5';

const MOTO_LOOKUP = { command: 'moto_server', envVar: 'MOTO_SERVER_PATH', venvFirst: true };

/**
 * Finds `moto_server`: `MOTO_SERVER_PATH`, then the package-local venv, then `PATH`. The venv
 * comes before `PATH` because it holds the pinned {@link MOTO_VERSION}, and a globally installed
 * moto may emulate S3 differently. Returns `undefined` when there is none.
 */
export async function findMotoServer(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  return findTool(MOTO_LOOKUP, env);
}

/**
 * Finds `moto_server`, or installs `moto[server]` ({@link MOTO_VERSION}) from PyPI into the
 * package-local venv, which it shares with the Temporal CLI. Needs `python3` with `venv`.
 *
 * @example
 * const motoServer = await ensureMotoServer(console.log);
 */
export async function ensureMotoServer(log: (line: string) => void = () => undefined): Promise<string> {
  return (await findMotoServer()) ?? installIntoToolsVenv(`moto[server]==${MOTO_VERSION}`, MOTO_LOOKUP, log);
}

/** Options of {@link startS3Server}. */
export interface S3ServerOptions {
  /** Port to listen on; a free one when absent. */
  port?: number;
  /** Address to bind (default `127.0.0.1`). */
  host?: string;
  /** The `moto_server` executable; found or installed with {@link ensureMotoServer} when absent. */
  executable?: string;
  /** How long to wait for the server to answer HTTP (default 30 s). */
  readyTimeoutMs?: number;
  /** Where progress lines go. */
  log?: (line: string) => void;
}

/** A running S3-protocol test server. State lives in its memory and ends with it. */
export interface RunningS3Server {
  /** Base URL for an S3 client's `endpoint` (use path-style addressing). */
  endpoint: string;
  /** The port it listens on. */
  port: number;
  /** Stops the server and waits for it to exit. */
  close(): Promise<void>;
}

/** True when anything answers an HTTP request at `url`, whatever the status. */
function answersHttp(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const request = http.get(url, { timeout: 2_000 }, (response) => {
      response.resume();
      resolve(true);
    });
    request.once('timeout', () => request.destroy(new Error('timeout')));
    request.once('error', () => resolve(false));
  });
}

/**
 * Starts `moto_server`, a real S3 REST server in memory, and resolves once it answers HTTP.
 * For tests and benchmarks of S3 code without a cloud account or a Docker daemon.
 *
 * @example
 * const s3 = await startS3Server();
 * await createTestBucket(s3.endpoint, 'batches');
 * // ... point the store at s3.endpoint ...
 * await s3.close();
 */
export async function startS3Server(options: S3ServerOptions = {}): Promise<RunningS3Server> {
  const executable = options.executable ?? (await ensureMotoServer(options.log));
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? (await freePort());
  const child = spawn(executable, ['-H', host, '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  // moto logs every request to stderr: keep only the tail, for the error message if it dies.
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  // A parent that crashes or forgets close() must not leave an orphaned server holding the port.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      process.removeListener('exit', killOnExit);
      resolve();
    }),
  );
  const spawnFailed = new Promise<never>((_, reject) => child.once('error', reject));
  // Clients need a connectable address, not the wildcard one the server may bind.
  const clientHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  const endpoint = `http://${clientHost.includes(':') ? `[${clientHost}]` : clientHost}:${port}`;
  const timeoutMs = options.readyTimeoutMs ?? 30_000;

  const ready = async (): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        const how = child.exitCode !== null ? `code ${child.exitCode}` : `signal ${child.signalCode}`;
        throw new Error(`moto_server exited with ${how} before answering: ${stderr.trim()}`);
      }
      if (await answersHttp(`${endpoint}/`)) return;
      if (Date.now() > deadline) {
        throw new Error(`moto_server did not answer on ${endpoint} within ${timeoutMs} ms: ${stderr.trim()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  try {
    await Promise.race([ready(), spawnFailed]);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    endpoint,
    port,
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * An S3 client for a test server at `endpoint`: path-style addressing (custom endpoints have no
 * per-bucket DNS names), region `us-east-1`, and dummy credentials unless the environment has some.
 * The caller owns it and calls `destroy()`.
 */
export function createTestS3Client(endpoint: string): S3Client {
  const haveCredentials = Boolean(process.env.AWS_ACCESS_KEY_ID && process.env.AWS_SECRET_ACCESS_KEY);
  return new S3Client({
    endpoint,
    forcePathStyle: true,
    // Fixed, not from the environment: outside us-east-1 CreateBucket needs a LocationConstraint.
    region: 'us-east-1',
    ...(haveCredentials ? {} : { credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }),
  });
}

/**
 * Creates `bucket` on the S3 server at `endpoint`; a bucket that already exists and is ours is
 * fine, so tests may call it again.
 *
 * @example
 * await createTestBucket(process.env.TEST_S3_ENDPOINT!, 'my-test-bucket');
 */
export async function createTestBucket(endpoint: string, bucket: string): Promise<void> {
  const client = createTestS3Client(endpoint);
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    if ((err as { name?: string }).name !== 'BucketAlreadyOwnedByYou') throw err;
  } finally {
    client.destroy();
  }
}
