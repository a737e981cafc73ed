import { InvalidArgumentError, type Command } from 'commander';
import { KNOWN_MODELS } from '../shared/prices';
import {
  DEFAULT_FAKE_IMAGE_TOKENS,
  FAKE_MARITACA_DEFAULT_API_KEY,
  startFakeMaritaca,
  type FakeMaritacaBehaviour,
  type FakeMaritacaOptions,
  type FakeTemplateOverhead,
} from '../testing/fake-maritaca';

/** Exit code of a command line the user got wrong, as opposed to a failure while running. */
const USAGE_EXIT_CODE = 2;
const DEFAULT_PORT = 8090;

/**
 * The flags are the server's own options, with port and host always set by their defaults; the
 * outage's and the revocation's flags are named for the command line and mapped below.
 */
type FakeServerFlags = Omit<FakeMaritacaOptions, 'outageForMs' | 'revokeKeyAfterCalls'> & {
  port: number;
  host: string;
  outageFor?: number;
  revokeKeyAfter?: number;
};

/** Commander reports these as "option '--x <v>' argument 'y' is invalid. <message>", naming the flag. */
function invalid(message: string): InvalidArgumentError {
  const error = new InvalidArgumentError(message);
  error.exitCode = USAGE_EXIT_CODE;
  return error;
}

function parseNumber(value: string): number {
  const trimmed = value.trim();
  const number = trimmed === '' ? Number.NaN : Number(trimmed);
  if (!Number.isFinite(number)) throw invalid('must be a number');
  return number;
}

function nonNegativeNumber(value: string): number {
  const number = parseNumber(value);
  if (number < 0) throw invalid('must be a number >= 0');
  return number;
}

function positiveNumber(value: string): number {
  const number = parseNumber(value);
  if (number <= 0) throw invalid('must be a number > 0');
  return number;
}

function rate(value: string): number {
  const number = parseNumber(value);
  if (number < 0 || number > 1) throw invalid('must be a number between 0 and 1');
  return number;
}

function integer(value: string): number {
  const number = parseNumber(value);
  if (!Number.isInteger(number)) throw invalid('must be an integer');
  return number;
}

function positiveInteger(value: string): number {
  const number = integer(value);
  if (number <= 0) throw invalid('must be a positive integer');
  return number;
}

function nonNegativeInteger(value: string): number {
  const number = integer(value);
  if (number < 0) throw invalid('must be an integer >= 0');
  return number;
}

function port(value: string): number {
  const number = integer(value);
  if (number < 0 || number > 65535) throw invalid('must be an integer between 0 and 65535');
  return number;
}

function replyTokens(value: string): 'max' | number {
  if (value.trim() === 'max') return 'max';
  try {
    return positiveInteger(value);
  } catch {
    throw invalid('must be "max" or a positive integer');
  }
}

function outage(value: string): NonNullable<FakeMaritacaBehaviour['outage']> {
  const trimmed = value.trim();
  if (trimmed !== 'refused' && trimmed !== 'unavailable') throw invalid('must be "refused" or "unavailable"');
  return trimmed;
}

function revokedStatus(value: string): NonNullable<FakeMaritacaBehaviour['revokedStatus']> {
  const status = integer(value);
  if (status !== 401 && status !== 402 && status !== 403) throw invalid('must be 401, 402 or 403');
  return status;
}

const OVERHEAD = /^(\d+)\+(\d+)$/;
const OVERHEAD_SYNTAX = 'must be R+M (e.g. 3+5) or MODEL=R+M,... (e.g. sabia-4=3+5,sabiazinho-4=2+4)';

function overheadOf(text: string): FakeTemplateOverhead | undefined {
  const match = OVERHEAD.exec(text.trim());
  return match ? { perRequest: Number(match[1]), perMessage: Number(match[2]) } : undefined;
}

/**
 * Parses `--template-overhead`: `R+M` (chat-template tokens per request and per message) for
 * every model, or `MODEL=R+M` pairs separated by commas for some models (the others keep the
 * fake's default).
 *
 * @throws InvalidArgumentError (exit code 2) on bad syntax, an unknown model or a model given twice.
 * @example
 * parseTemplateOverhead('3+5'); // { perRequest: 3, perMessage: 5 }
 * parseTemplateOverhead('sabia-4=3+5,sabiazinho-4=2+4');
 * // { 'sabia-4': { perRequest: 3, perMessage: 5 }, 'sabiazinho-4': { perRequest: 2, perMessage: 4 } }
 */
export function parseTemplateOverhead(value: string): NonNullable<FakeMaritacaBehaviour['templateOverhead']> {
  if (!value.includes('=')) {
    const overhead = overheadOf(value);
    if (!overhead) throw invalid(OVERHEAD_SYNTAX);
    return overhead;
  }
  const byModel: Record<string, FakeTemplateOverhead> = {};
  for (const pair of value.split(',')) {
    const [model = '', figures, ...rest] = pair.split('=').map((part) => part.trim());
    const overhead = figures === undefined || rest.length > 0 ? undefined : overheadOf(figures);
    if (!overhead) throw invalid(OVERHEAD_SYNTAX);
    if (!KNOWN_MODELS.includes(model)) throw invalid(`names unknown model "${model}"`);
    if (model in byModel) throw invalid(`gives "${model}" twice`);
    byModel[model] = overhead;
  }
  return byModel;
}

/**
 * Adds the `fake-server` subcommand, which runs a fake Maritaca AI server until SIGINT or
 * SIGTERM, for demos and benchmarks against something that behaves like the real API.
 *
 * @returns the subcommand, so callers may tweak it further.
 */
export function registerFakeServerCommand(program: Command): Command {
  return program
    .command('fake-server')
    .description(
      'Run a fake Maritaca AI server (OpenAI-compatible) with injectable latency, errors and limits',
    )
    .option('--port <n>', 'port to listen on; 0 picks a free one', port, DEFAULT_PORT)
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option(
      '--api-key <key>',
      `key clients must send (default: $MARITACA_API_KEY, else "${FAKE_MARITACA_DEFAULT_API_KEY}")`,
    )
    .option('--latency-ms <ms>', 'fixed latency of every answer', nonNegativeNumber)
    .option(
      '--latency-median-ms <ms>',
      'median of a log-normal latency (needs --latency-p99-ms)',
      positiveNumber,
    )
    .option('--latency-p99-ms <ms>', '99th percentile of the log-normal latency', positiveNumber)
    .option('--error-rate-500 <fraction>', 'fraction of requests answered 500', rate)
    .option('--error-rate-429 <fraction>', 'fraction of requests answered 429', rate)
    .option('--retry-after-seconds <s>', 'Retry-After of injected 429s (default: 1)', nonNegativeInteger)
    .option('--hang-rate <fraction>', 'fraction of requests never answered', rate)
    .option('--rpm <n>', 'requests admitted per sliding minute; beyond it 429', positiveInteger)
    .option('--reply-tokens <max|n>', 'reply length: "max" (= max_tokens) or a token count', replyTokens)
    .option('--seed <n>', 'seed of the random decisions, for reproducible runs', integer)
    .option('--cached-tokens-rate <fraction>', 'fraction of prompt tokens reported as cached', rate)
    .option(
      '--template-overhead <R+M|model=R+M,...>',
      'chat-template tokens per request + per message in prompt_tokens, for all or some models (default: 3+5)',
      parseTemplateOverhead,
    )
    .option(
      '--invalid-structured-rate <fraction>',
      'fraction of structured answers (JSON formats, forced tool calls) made invalid, to exercise re-asks',
      rate,
    )
    .option(
      '--invalid-structured-first-only',
      'break first answers only: a request asked again is answered validly',
    )
    .option(
      '--image-tokens <n>',
      `prompt tokens counted for each image (default: ${DEFAULT_FAKE_IMAGE_TOKENS})`,
      nonNegativeInteger,
    )
    .option(
      '--outage <refused|unavailable>',
      'start down: "refused" closes the port (connections refused), "unavailable" answers 503',
      outage,
    )
    .option(
      '--outage-for <ms>',
      'end the outage after this many ms (needed with --outage refused)',
      positiveNumber,
    )
    .option(
      '--revoke-key-after <n>',
      'refuse the key after n chat calls (0: from the start)',
      nonNegativeInteger,
    )
    .option(
      '--revoked-status <401|402|403>',
      'status of calls refused by --revoke-key-after (default: 401)',
      revokedStatus,
    )
    .option('--echo-key-in-errors', "repeat the client's key in every error body, to check clients redact it")
    .action(async function (this: Command) {
      const flags = this.opts<FakeServerFlags>();
      const usageError = (message: string): never =>
        this.error(`error: ${message}`, { exitCode: USAGE_EXIT_CODE, code: 'fakeServer.invalidOptions' });
      const logNormal = flags.latencyMedianMs !== undefined || flags.latencyP99Ms !== undefined;
      if (flags.latencyMs !== undefined && logNormal) {
        usageError('--latency-ms cannot be combined with --latency-median-ms/--latency-p99-ms');
      }
      if (logNormal && (flags.latencyMedianMs === undefined || flags.latencyP99Ms === undefined)) {
        usageError('--latency-median-ms and --latency-p99-ms must be given together');
      }
      if (logNormal && (flags.latencyP99Ms as number) < (flags.latencyMedianMs as number)) {
        usageError('--latency-p99-ms must be at least --latency-median-ms');
      }
      if (flags.outageFor !== undefined && flags.outage === undefined) {
        usageError('--outage-for needs --outage');
      }
      // With the port closed, /_config is unreachable and nothing else could ever end the outage.
      if (flags.outage === 'refused' && flags.outageFor === undefined) {
        usageError('--outage refused needs --outage-for: nothing else could end it');
      }
      const apiKey = flags.apiKey || process.env.MARITACA_API_KEY || FAKE_MARITACA_DEFAULT_API_KEY;
      const options: FakeMaritacaOptions = {
        port: flags.port,
        host: flags.host,
        apiKey,
        latencyMs: flags.latencyMs,
        latencyMedianMs: flags.latencyMedianMs,
        latencyP99Ms: flags.latencyP99Ms,
        errorRate500: flags.errorRate500,
        errorRate429: flags.errorRate429,
        retryAfterSeconds: flags.retryAfterSeconds,
        hangRate: flags.hangRate,
        rpm: flags.rpm,
        replyTokens: flags.replyTokens,
        seed: flags.seed,
        cachedTokensRate: flags.cachedTokensRate,
        templateOverhead: flags.templateOverhead,
        invalidStructuredRate: flags.invalidStructuredRate,
        ...(flags.invalidStructuredFirstOnly ? { invalidStructuredFirstOnly: true } : {}),
        imageTokens: flags.imageTokens,
        outage: flags.outage,
        outageForMs: flags.outageFor,
        revokeKeyAfterCalls: flags.revokeKeyAfter,
        revokedStatus: flags.revokedStatus,
        ...(flags.echoKeyInErrors ? { echoKeyInErrors: true } : {}),
      };
      let server;
      try {
        server = await startFakeMaritaca(options);
      } catch (error) {
        return this.error(
          `error: cannot start the fake server on ${flags.host}:${flags.port}: ${(error as Error).message}`,
          {
            exitCode: 1,
            code: 'fakeServer.listenFailed',
          },
        );
      }
      process.stdout.write(`Fake Maritaca listening on ${server.url}\n`);
      if (flags.outage !== undefined) {
        const ending = flags.outageFor === undefined ? '' : ` for ${flags.outageFor} ms`;
        process.stdout.write(`Outage "${flags.outage}" in force${ending}\n`);
      }
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          server.close().then(resolve, resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
