import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

/** The built CLI launcher (tests run after `npm run build`). */
export const CLI = path.join(__dirname, '..', '..', 'bin', 'maritaca-batch.js');

/** A child process with everything it printed so far. */
export interface Spawned {
  child: ChildProcess;
  output(): string;
  /** Resolves with the first stdout line matching `pattern`; rejects if the process exits first. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** How {@link spawnProcess} starts a process. */
export interface SpawnOptions {
  /** Leader of its own process group (its pid is the group id), as a shell starts a job. */
  detached?: boolean;
}

/** Starts `maritaca-batch <args>` as a real process. */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}, options: SpawnOptions = {}): Spawned {
  return spawnProcess(process.execPath, [CLI, ...args], { ...process.env, ...env }, undefined, options);
}

/** Starts any command as a real process with exactly `env`, writing `input` to its stdin when given. */
export function spawnProcess(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  input?: string,
  options: SpawnOptions = {},
): Spawned {
  const child = spawn(command, args, {
    env,
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  if (input !== undefined) child.stdin!.end(input);
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    out += chunk.toString();
    for (const l of listeners) l();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    exited,
    waitForLine(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = out.match(pattern);
          if (match) {
            cleanup();
            resolve(match);
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`No line matching ${pattern} within ${timeoutMs} ms; output:\n${out}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        void exited.then((code) => {
          if (listeners.has(check)) {
            cleanup();
            reject(new Error(`Process exited (${code}) before printing ${pattern}; output:\n${out}`));
          }
        });
        listeners.add(check);
        check();
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
