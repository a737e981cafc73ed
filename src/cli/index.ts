import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { runWorker } from '../worker';
import { registerFakeServerCommand } from './fake-server-command';
import { InvalidBatchFileError, InvalidBatchInputError } from '../client';
import { registerBatchCommands } from './batch-commands';
import { codecFromEnv, startCodecServer } from '../codec';
import { runDemo } from './demo';
import { runDevStack } from './dev';
import { CliError, ExitCodes } from './output';
import { cliPriceTable } from './prices-flag';

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidArgumentError('must be a port number between 1 and 65535');
  }
  return port;
}

/** Builds the `maritaca-batch` command line. */
export function buildProgram(): Command {
  const program = new Command('maritaca-batch')
    .description('Durable, budget-approved batches of Maritaca AI chat requests on Temporal')
    .option('--address <host:port>', 'Temporal frontend address (env TEMPORAL_ADDRESS)')
    .option('--namespace <name>', 'Temporal namespace (env TEMPORAL_NAMESPACE)')
    .option('--task-queue <name>', 'task queue of the batch workers (env TEMPORAL_TASK_QUEUE)')
    .option(
      '--prices-file <path>',
      'JSON price table merged over the built-in one (env MARITACA_PRICES_FILE)',
    )
    // Usage errors throw instead of exiting, so main() gives them the same exit code (2) and the
    // same one-line form as every other input error. Subcommands inherit both settings.
    .exitOverride()
    .configureOutput({
      outputError: (text, write) => write(`maritaca-batch: ${text.replace(/^error: /, '')}`),
    });

  program
    .command('worker')
    .description('run a batch worker (needs MARITACA_API_KEY; MARITACA_BASE_URL optional)')
    .action(async () => {
      const globals = program.opts<{
        address?: string;
        namespace?: string;
        taskQueue?: string;
        pricesFile?: string;
      }>();
      await runWorker({
        prices: cliPriceTable(globals.pricesFile),
        ...(globals.address ? { address: globals.address } : {}),
        ...(globals.namespace ? { namespace: globals.namespace } : {}),
        ...(globals.taskQueue ? { taskQueue: globals.taskQueue } : {}),
        onReady: (info) => {
          console.log(
            `Worker polling task queue "${info.taskQueue}" on ${info.address} (namespace ${info.namespace}); Maritaca at ${info.baseURL}`,
          );
          if (info.metricsAddress) console.log(`Prometheus metrics at http://${info.metricsAddress}/metrics`);
          console.log(`Prices checked on ${info.pricesCheckedOn}`);
        },
      });
    });

  registerBatchCommands(program);
  registerFakeServerCommand(program);

  program
    .command('codec-server')
    .description('let the Temporal UI decode encrypted payloads for people who hold the token')
    .option('--port <port>', 'port to listen on', parsePort, 8888)
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option(
      '--ui-origin <origin>',
      'the one browser origin allowed to call it (the Temporal UI)',
      'http://localhost:8233',
    )
    .option('--token <token>', 'bearer token callers must present (env MARITACA_CODEC_TOKEN)')
    .action(async (opts: { port: number; host: string; uiOrigin: string; token?: string }) => {
      const codec = codecFromEnv();
      if (!codec)
        throw new CliError('MARITACA_ENCRYPTION_KEY is not set: there is nothing to decode with', 2);
      const token = opts.token ?? process.env.MARITACA_CODEC_TOKEN?.trim();
      if (!token) throw new CliError('a token is required: --token or MARITACA_CODEC_TOKEN', 2);
      const server = await startCodecServer({
        codec,
        token,
        uiOrigin: opts.uiOrigin,
        port: opts.port,
        host: opts.host,
      });
      console.log(`Codec server listening on ${server.url} for ${opts.uiOrigin}`);
      console.log(`Temporal UI codec endpoint (dev server): ${server.url}/<token>`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await server.close();
    });

  program
    .command('dev')
    .description(
      'dev server + worker + fake Maritaca (or the real API when MARITACA_API_KEY is set), until Ctrl-C',
    )
    .option('--port <port>', 'Temporal dev server gRPC port', parsePort, 7233)
    .option('--ui-port <port>', 'Temporal UI port', parsePort, 8233)
    .option('--fake-port <port>', 'fake Maritaca port', parsePort, 8090)
    .option('--db-filename <file>', 'SQLite file of the dev server (default .temporal/dev.db in the package)')
    .action(async (opts: { port: number; uiPort: number; fakePort: number; dbFilename?: string }) => {
      const globals = program.opts<{ taskQueue?: string }>();
      await runDevStack({
        port: opts.port,
        uiPort: opts.uiPort,
        fakePort: opts.fakePort,
        ...(globals.taskQueue ? { taskQueue: globals.taskQueue } : {}),
        ...(opts.dbFilename ? { dbFilename: opts.dbFilename } : {}),
      });
    });

  program
    .command('demo')
    .description(
      'dev server + fake Maritaca (or the real API when MARITACA_API_KEY is set) + worker + a demo batch',
    )
    .option('--no-keep', 'stop everything when the batch is done instead of leaving the UI up')
    .option('--port <port>', 'Temporal dev server gRPC port', parsePort, 7233)
    .option('--ui-port <port>', 'Temporal UI port', parsePort, 8233)
    .option(
      '--db-filename <file>',
      'SQLite file of the dev server (default .temporal/demo.db in the package)',
    )
    .action(async (opts: { keep: boolean; port: number; uiPort: number; dbFilename?: string }) => {
      await runDemo({
        keepRunning: opts.keep,
        port: opts.port,
        uiPort: opts.uiPort,
        ...(opts.dbFilename ? { dbFilename: opts.dbFilename } : {}),
      });
    });

  return program;
}

/**
 * Runs the CLI with `argv` (as `process.argv`) and resolves to the exit code ({@link ExitCodes}):
 * 0 on success, 2 for input the user must fix (bad file, flag, value or model name), 3 for a batch
 * that has not finished, 4 for one that ended without every request succeeding, 1 for anything
 * else. Errors are printed as one line on stderr.
 */
export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has printed the message (or the help) already.
      return err.exitCode === 0 ? 0 : ExitCodes.badInput;
    }
    if (err instanceof InvalidBatchFileError || err instanceof InvalidBatchInputError) {
      process.stderr.write(`maritaca-batch: ${err.message}\n`);
      return 2;
    }
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`maritaca-batch: ${message}\n`);
    return err instanceof CliError ? err.exitCode : 1;
  }
}
