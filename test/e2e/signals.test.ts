import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../src/testing/dev-server';
import { spawnCli, type Spawned } from '../helpers/processes';
import { waitFor } from '../helpers/wait';

/** What the first signal must achieve within this long: exit, no process left, ports free. */
const STOP_WITHIN_MS = 10_000;

interface Proc {
  pid: number;
  ppid: number;
  pgid: number;
  state: string;
}

/** Every process of the machine, from /proc (zombies included: `alive` leaves them out). */
function processTable(): Proc[] {
  const table: Proc[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // Exited while we looked.
    }
    // The command name is in parentheses and may hold spaces or parentheses itself.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    table.push({ pid: Number(entry), state: fields[0]!, ppid: Number(fields[1]), pgid: Number(fields[2]) });
  }
  return table;
}

/** The pids of everything `pid` started, at any depth. */
function descendants(pid: number): number[] {
  const table = processTable();
  const found: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const parent = queue.shift()!;
    for (const p of table) {
      if (p.ppid === parent && !found.includes(p.pid)) {
        found.push(p.pid);
        queue.push(p.pid);
      }
    }
  }
  return found;
}

/** Processes still running (not zombies) among `pids` or in process group `pgid`. */
function alive(pids: number[], pgid: number): number[] {
  return processTable()
    .filter((p) => p.state !== 'Z' && (pids.includes(p.pid) || p.pgid === pgid))
    .map((p) => p.pid);
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

interface Stopped {
  code: number | null;
  elapsedMs: number;
}

/**
 * Waits until the command exited, none of `pids` nor of its process group runs any more and
 * nothing accepts connections on `ports`, failing after {@link STOP_WITHIN_MS} from `since`.
 */
async function expectAllGone(cli: Spawned, pids: number[], ports: number[], since: number): Promise<Stopped> {
  let code: number | null | undefined;
  void cli.exited.then((c) => (code = c));
  const pgid = cli.child.pid!;
  const state = await waitFor(
    async () => ({
      exited: code !== undefined,
      running: alive(pids, pgid).map((pid) => `${pid} ${commandOf(pid)}`),
      listening: (await Promise.all(ports.map(async (port) => ((await accepts(port)) ? port : 0)))).filter(
        Boolean,
      ),
    }),
    (s) => s.exited && s.running.length === 0 && s.listening.length === 0,
    {
      timeoutMs: Math.max(0, since + STOP_WITHIN_MS - Date.now()),
      intervalMs: 100,
      what: 'everything to stop',
    },
  );
  expect(state).toEqual({ exited: true, running: [], listening: [] });
  return { code: code ?? null, elapsedMs: Date.now() - since };
}

interface DevProcess {
  cli: Spawned;
  ports: number[];
  /** The processes `dev` started (the Temporal dev server). */
  children: number[];
}

/** Every command a test started, so that a failed test cannot leave one holding its ports. */
const started: { cli: Spawned; children: number[] }[] = [];

async function startDev(): Promise<DevProcess> {
  const [port, uiPort, fakePort] = [await freePort(), await freePort(), await freePort()];
  const dbFilename = path.join(mkdtempSync(path.join(os.tmpdir(), 'signals-')), 'dev.db');
  const cli = spawnCli(
    [
      'dev',
      '--port',
      String(port),
      '--ui-port',
      String(uiPort),
      '--fake-port',
      String(fakePort),
      '--db-filename',
      dbFilename,
    ],
    { MARITACA_API_KEY: '' },
    { detached: true },
  );
  const entry = { cli, children: [] as number[] };
  started.push(entry);
  await cli.waitForLine(/Press Ctrl-C to stop/, 90_000);
  const children = descendants(cli.child.pid!);
  entry.children = children;
  // Without its child the test could not tell whether the dev server is left behind.
  expect(children.map(commandOf).join('\n')).toMatch(/temporal server start-dev/);
  const ports = [port, uiPort, fakePort];
  for (const p of ports) expect(await accepts(p)).toBe(true);
  return { cli, ports, children };
}

const STOPPING_LINE =
  'Stopping: draining the worker, stopping the fake server and the Temporal dev server ...';

describe('Ctrl-C and SIGTERM stop the long-running commands, and everything they started', () => {
  afterEach(() => {
    // A failed test must not leave a dev server holding its ports for the next one.
    for (const { cli, children } of started.splice(0)) {
      for (const pid of [-cli.child.pid!, cli.child.pid!, ...children]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Already gone, as it should be.
        }
      }
    }
  });

  test('dev: one SIGINT to its process group (a Ctrl-C) stops it, the dev server and the fake server within 10 s', async () => {
    const dev = await startDev();
    const since = Date.now();
    process.kill(-dev.cli.child.pid!, 'SIGINT');
    const stopped = await expectAllGone(dev.cli, dev.children, dev.ports, since);
    expect(stopped.code).toBe(0);
    const output = dev.cli.output();
    expect(output).toContain(`${STOPPING_LINE}\nStopped.\n`);
    expect(output).not.toMatch(/Not running|DRAINING|\n\s+at /);
  }, 120_000);

  test('dev: SIGTERM to the node process alone still stops the Temporal dev server it started', async () => {
    const dev = await startDev();
    const since = Date.now();
    dev.cli.child.kill('SIGTERM');
    const stopped = await expectAllGone(dev.cli, dev.children, dev.ports, since);
    expect(stopped.code).toBe(0);
    expect(dev.cli.output()).toContain(`${STOPPING_LINE}\nStopped.\n`);
  }, 120_000);

  test('dev: a second SIGINT exits at once, killing the dev server', async () => {
    const dev = await startDev();
    const since = Date.now();
    process.kill(-dev.cli.child.pid!, 'SIGINT');
    await dev.cli.waitForLine(/Stopping: /, 5_000);
    process.kill(-dev.cli.child.pid!, 'SIGINT');
    const code = await dev.cli.exited;
    // 128 + SIGINT: the shell's way to say "interrupted".
    expect(code).toBe(130);
    expect(dev.cli.output()).toContain('Exiting at once.');
    await expectAllGone(dev.cli, dev.children, dev.ports, since);
  }, 120_000);

  test('dev: even SIGKILLed, it takes the Temporal dev server with it (Linux)', async () => {
    if (process.platform !== 'linux') return;
    const dev = await startDev();
    const since = Date.now();
    dev.cli.child.kill('SIGKILL');
    await expectAllGone(dev.cli, dev.children, dev.ports, since);
  }, 120_000);

  test('worker: SIGINT drains it and it exits 0 within 10 s, saying so', async () => {
    const worker = spawnCli(['worker'], {
      TEMPORAL_ADDRESS: process.env.TEST_TEMPORAL_ADDRESS,
      TEMPORAL_TASK_QUEUE: `signals-${randomUUID()}`,
      MARITACA_API_KEY: 'x',
    });
    started.push({ cli: worker, children: [] });
    await worker.waitForLine(/Worker polling task queue/);
    const since = Date.now();
    worker.child.kill('SIGINT');
    const code = await Promise.race([
      worker.exited,
      new Promise<string>((resolve) => setTimeout(() => resolve('still running'), STOP_WITHIN_MS).unref()),
    ]);
    if (code === 'still running') worker.child.kill('SIGKILL');
    expect({ code, output: worker.output() }).toMatchObject({ code: 0 });
    expect(Date.now() - since).toBeLessThan(STOP_WITHIN_MS);
    // The SDK's INFO lines (on stderr) may come in between.
    expect(worker.output()).toMatch(/\nStopping \(SIGINT\): draining the worker[^\n]*\n(.*\n)*Stopped\.\n/);
    expect(worker.output()).not.toMatch(/Not running|\n\s+at /);
  }, 60_000);

  test('demo: Ctrl-C in the middle of the batch, calls in flight, stops everything within 10 s', async () => {
    const [port, uiPort] = [await freePort(), await freePort()];
    const dbFilename = path.join(mkdtempSync(path.join(os.tmpdir(), 'signals-demo-')), 'demo.db');
    const cli = spawnCli(
      ['demo', '--port', String(port), '--ui-port', String(uiPort), '--db-filename', dbFilename],
      { MARITACA_API_KEY: '' },
      { detached: true },
    );
    const entry = { cli, children: [] as number[] };
    started.push(entry);
    const [, fakePort] = await cli.waitForLine(/Fake Maritaca server at http:\/\/127\.0\.0\.1:(\d+)/, 90_000);
    const children = descendants(cli.child.pid!);
    entry.children = children;
    await cli.waitForLine(/running +\d+\/30 done, [1-9] in flight/, 60_000);
    const since = Date.now();
    process.kill(-cli.child.pid!, 'SIGINT');
    const stopped = await expectAllGone(cli, children, [port, uiPort, Number(fakePort)], since);
    expect(stopped.code).toBe(0);
    const output = cli.output();
    expect(output).toContain(`${STOPPING_LINE}\nStopped.\n`);
    // Nothing the interrupted batch would have printed comes after the stop.
    expect(output.slice(output.indexOf(STOPPING_LINE))).toBe(`${STOPPING_LINE}\nStopped.\n`);
  }, 150_000);
});
