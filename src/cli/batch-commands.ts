import { createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { once } from 'node:events';
import { SingleBar, Presets } from 'cli-progress';
import { WorkflowExecutionStatusName } from '@temporalio/client';
import { InvalidArgumentError, type Command } from 'commander';
import {
  BatchIdInUseError,
  BatchNotFoundError,
  BatchRequestFailedError,
  BatchUpdateRefusedError,
  MaritacaBatchClient,
  outcomesOf,
  validateBatchInput,
  type BatchHandle,
} from '../client';
import {
  countJsonlRequests,
  parseBatchJsonlFile,
  toOpenAIBatchOutput,
  toOpenAIBatchOutputLine,
} from '../store';
import {
  DEFAULT_MAX_OUTPUT_TOKENS,
  DEFAULT_MODEL,
  INLINE_RESULTS_MAX,
  UnknownModelError,
  WORKFLOW_TYPE,
  estimateInputOf,
  knownModelsOf,
  modelPriceOf,
  publicEstimate,
  parseDurationMs,
  progressQuery,
  type BatchOptions,
  type BatchProgress,
  type BatchResult,
  type TemplateOverhead,
} from '../shared';
import { estimateBatchCost } from '../activities/estimate-cost';
import {
  CliError,
  ExitCodes,
  FINAL_STATUSES,
  brl,
  exitCodeOf,
  printJson,
  progressLine,
  waitingHint,
} from './output';
import { chatFeatureIssues } from '../client/chat-features';
import { nextPollDelay, watchBatch } from './watch';
import { cliPriceTable } from './prices-flag';

/** Files larger than this go by reference, well under Temporal's 2 MB payload limit. */
const INLINE_FILE_MAX_BYTES = 512 * 1024;

/** The global flags every batch command shares. */
interface GlobalFlags {
  address?: string;
  namespace?: string;
  taskQueue?: string;
  pricesFile?: string;
}

function globals(command: Command): GlobalFlags {
  return command.optsWithGlobals<GlobalFlags>();
}

/** Connects with flags first, the environment second; names the address when it fails. */
async function connect(command: Command): Promise<{ batches: MaritacaBatchClient; where: string }> {
  const flags = globals(command);
  const address = flags.address ?? process.env.TEMPORAL_ADDRESS ?? 'localhost:7233';
  const namespace = flags.namespace ?? process.env.TEMPORAL_NAMESPACE ?? 'default';
  // Outside the try: a bad prices file is input to fix, not an unreachable server.
  const prices = cliPriceTable(flags.pricesFile);
  try {
    const batches = await MaritacaBatchClient.connect({
      address,
      namespace,
      ...(flags.taskQueue ? { taskQueue: flags.taskQueue } : {}),
      prices,
    });
    return { batches, where: `namespace "${namespace}" at ${address}` };
  } catch (err) {
    throw new CliError(`cannot reach the Temporal server at ${address}: ${firstLine(err)}`);
  }
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
}

/** Runs `action` with a connected client, closing it afterwards and turning known errors into one line. */
async function withClient(
  command: Command,
  action: (batches: MaritacaBatchClient, where: string) => Promise<void>,
): Promise<void> {
  const { batches, where } = await connect(command);
  try {
    await action(batches, where);
  } catch (err) {
    if (err instanceof BatchNotFoundError)
      throw new CliError(`no batch with id "${err.batchId}" in ${where}`);
    if (err instanceof BatchUpdateRefusedError)
      throw new CliError(`batch ${err.batchId} refused: ${err.reason}`);
    if (err instanceof BatchIdInUseError) {
      throw new CliError(
        `batch id "${err.batchId}" is already used by a ${err.running ? 'running' : 'finished'} batch: choose another --id` +
          `, or run "maritaca-batch retry-failed ${err.batchId}" to re-send its failed requests` +
          (err.running ? '' : ', or add --rerun to start it again under the same id'),
        ExitCodes.badInput,
      );
    }
    throw err;
  } finally {
    await batches.close();
  }
}

function positiveNumber(value: string): number {
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number) || number <= 0) {
    throw new InvalidArgumentError('must be a positive number');
  }
  return number;
}

function positiveInteger(value: string): number {
  const number = positiveNumber(value);
  if (!Number.isInteger(number)) throw new InvalidArgumentError('must be a whole number');
  return number;
}

/**
 * Parses `--model`: a model the price table in use knows (`--prices-file` or
 * `MARITACA_PRICES_FILE` may add some); anything else is refused with the list, as a file's
 * model is. Program options are parsed before a subcommand's, wherever they stand.
 */
function knownModelIn(program: Command): (value: string) => string {
  return (value) => {
    try {
      modelPriceOf(cliPriceTable(program.opts<GlobalFlags>().pricesFile), value);
    } catch (err) {
      if (err instanceof UnknownModelError) throw new InvalidArgumentError(err.message);
      throw err;
    }
    return value;
  };
}

/** Parses `--template-overhead R+M`: tokens the chat template adds per request and per message. */
function templateOverheadFlag(value: string): TemplateOverhead {
  const match = /^\s*(\d+(?:\.\d+)?)\s*\+\s*(\d+(?:\.\d+)?)\s*$/.exec(value);
  if (!match)
    throw new InvalidArgumentError('must be R+M: tokens per request + tokens per message, e.g. 0+6.5');
  return { perRequest: Number(match[1]), perMessage: Number(match[2]) };
}

const TEMPLATE_OVERHEAD_HELP =
  "chat-template tokens per request + per message, e.g. the last batch's learned 0+6.5 (default 16+16)";

function duration(value: string): string {
  if (parseDurationMs(value) === undefined) {
    throw new InvalidArgumentError('must be a duration such as 90s, 15m, 2h or 7d');
  }
  return value;
}

/** Registers estimate, submit, approve, reject, status, results, cancel and list. */
export function registerBatchCommands(program: Command): void {
  const knownModel = knownModelIn(program);
  const prices = () => cliPriceTable(program.opts<GlobalFlags>().pricesFile);
  program
    .command('estimate')
    .argument('<file>', 'JSONL file: OpenAI Batch API input lines or {"id","messages","model"?} lines')
    .description('estimate what a batch file would cost at most, without starting anything')
    .option(
      '--model <model>',
      `default model for lines that name none (default ${DEFAULT_MODEL})`,
      knownModel,
    )
    .option(
      '--max-output-tokens <n>',
      'max_tokens of lines that set none',
      positiveInteger,
      DEFAULT_MAX_OUTPUT_TOKENS,
    )
    .option('--template-overhead <R+M>', TEMPLATE_OVERHEAD_HELP, templateOverheadFlag)
    .option('--json', 'print the estimate as one JSON object')
    .action(
      async (
        file: string,
        opts: {
          model?: string;
          maxOutputTokens: number;
          templateOverhead?: TemplateOverhead;
          json?: boolean;
        },
      ) => {
        const table = prices();
        const { requests } = await parseBatchJsonlFile(file, {
          knownModels: knownModelsOf(table),
          requestIssues: (request) => chatFeatureIssues(request),
        });
        const model = opts.model ?? DEFAULT_MODEL;
        // The same checks as submit (model names, ids, sizes), so both refuse a file alike.
        validateBatchInput(
          { requests, options: { model, maxOutputTokens: opts.maxOutputTokens } },
          { inline: false, prices: table },
        );
        const estimate = publicEstimate(
          estimateBatchCost(
            estimateInputOf(requests, {
              model,
              maxOutputTokens: opts.maxOutputTokens,
              ...(opts.templateOverhead ? { templateOverhead: opts.templateOverhead } : {}),
            }),
            table,
          ),
        );
        if (opts.json) return printJson(estimate);
        console.log(
          `${estimate.totalRequests} requests, ${estimate.inputTokenCount === 'exact' ? '' : '~'}${estimate.totalInputTokens} input tokens ` +
            `(${estimate.inputTokenCount === 'exact' ? "counted with Maritaca's tokenizer, " : ''}${brl(estimate.inputCost)}), ` +
            `up to ${estimate.totalOutputTokens} output tokens (${brl(estimate.outputCost)}): estimate ${brl(estimate.totalCost)}, ` +
            `never more than ${brl(estimate.maxCost)} (default model ${estimate.model})`,
        );
        const actions = estimate.temporalActions;
        if (actions) {
          console.log(
            `Temporal: about ${actions.total} actions, US$ ${actions.costUsd.toFixed(4)} at US$ ${actions.usdPerMillion} per million ` +
              '(calls answered within one heartbeat interval; each longer interval adds one per call)',
          );
        }
      },
    );

  program
    .command('submit')
    .argument(
      '<file>',
      'JSONL file (OpenAI Batch API input lines or {"id","messages","model"?} lines), or an s3:// / file:// URL of one already in the store',
    )
    .description('validate a batch file and start a batch; it waits for approval unless auto-approved')
    .option(
      '--model <model>',
      `default model for lines that name none (default ${DEFAULT_MODEL})`,
      knownModel,
    )
    .option('--concurrency <n>', 'calls in flight at once (default 5)', positiveInteger)
    .option('--max-output-tokens <n>', 'max_tokens of lines that set none (default 1000)', positiveInteger)
    .option(
      '--auto-approve-below <brl>',
      'approve automatically when the estimate is below this amount',
      positiveNumber,
    )
    .option(
      '--approval-timeout <duration>',
      'end the batch as expired if not approved in time (e.g. 24h)',
      duration,
    )
    .option('--fail-fast', 'fail the whole batch on the first request that exhausts its retries')
    .option(
      '--by-reference',
      `upload the file to the batch store for the workers to page (automatic above ${INLINE_RESULTS_MAX} requests or 512 KiB)`,
    )
    .option('--rpm <n>', "the key's requests per minute (rateLimit.rpm); tier 0: 60", positiveInteger)
    .option('--input-tpm <n>', "the key's input tokens per minute (rateLimit.inputTpm)", positiveInteger)
    .option('--output-tpm <n>', "the key's output tokens per minute (rateLimit.outputTpm)", positiveInteger)
    .option(
      '--id <batchId>',
      'batch id (workflow id), unique: an id already used is refused; default generated',
    )
    .option('--rerun', 'with --id: start again under the id of a batch that has ended')
    .option('--template-overhead <R+M>', TEMPLATE_OVERHEAD_HELP, templateOverheadFlag)
    .option('--json', 'print {batchId, estimate} as one JSON object')
    .action(
      async (
        file: string,
        opts: {
          model?: string;
          concurrency?: number;
          maxOutputTokens?: number;
          autoApproveBelow?: number;
          approvalTimeout?: string;
          failFast?: boolean;
          byReference?: boolean;
          rpm?: number;
          inputTpm?: number;
          outputTpm?: number;
          id?: string;
          rerun?: boolean;
          templateOverhead?: TemplateOverhead;
          json?: boolean;
        },
        command: Command,
      ) => {
        const fromObject = /^(s3|file):\/\//.test(file);
        // A large file goes to the store and the workers page it; the client then parses it once,
        // in startFromFile, instead of here as well.
        const count = fromObject ? undefined : await countJsonlRequests(file);
        const size = fromObject ? 0 : (await stat(file)).size;
        const byReference =
          fromObject || opts.byReference || (count ?? 0) > INLINE_RESULTS_MAX || size > INLINE_FILE_MAX_BYTES;
        const requests = byReference
          ? undefined
          : (
              await parseBatchJsonlFile(file, {
                knownModels: knownModelsOf(prices()),
                requestIssues: (request) => chatFeatureIssues(request),
              })
            ).requests;
        const options: BatchOptions = {
          returnExceptions: !opts.failFast,
          ...(opts.model ? { model: opts.model } : {}),
          ...(opts.concurrency ? { maxConcurrency: opts.concurrency } : {}),
          ...(opts.maxOutputTokens ? { maxOutputTokens: opts.maxOutputTokens } : {}),
          ...(opts.autoApproveBelow !== undefined ? { autoApproveBelow: opts.autoApproveBelow } : {}),
          ...(opts.approvalTimeout ? { approvalTimeout: opts.approvalTimeout } : {}),
          ...(opts.templateOverhead ? { templateOverhead: opts.templateOverhead } : {}),
          ...(opts.rpm || opts.inputTpm || opts.outputTpm
            ? {
                rateLimit: {
                  ...(opts.rpm ? { rpm: opts.rpm } : {}),
                  ...(opts.inputTpm ? { inputTpm: opts.inputTpm } : {}),
                  ...(opts.outputTpm ? { outputTpm: opts.outputTpm } : {}),
                },
              }
            : {}),
        };
        if (opts.rerun && !opts.id)
          throw new CliError('--rerun needs --id (the batch to start again)', ExitCodes.badInput);
        await withClient(command, async (batches) => {
          const startOptions = {
            ...(opts.id ? { batchId: opts.id } : {}),
            ...(opts.rerun ? { rerun: true } : {}),
          };
          let handle: BatchHandle;
          if (requests) handle = await batches.start(requests, options, startOptions);
          else if (fromObject) handle = await batches.startFromObject(file, options, startOptions);
          else {
            const bar = uploadBar(opts.json === true);
            try {
              handle = await batches.startFromFile(file, options, {
                ...startOptions,
                onUploadProgress: (sent, total) => bar?.update(sent, total),
              });
            } finally {
              bar?.stop();
            }
          }
          const progress = await waitWhileEstimating(handle);
          if (progress.status === 'failed') {
            throw new CliError(
              `batch ${handle.batchId} failed: ${progress.failure ?? 'see the Temporal UI'}`,
            );
          }
          if (opts.json)
            return printJson({
              batchId: handle.batchId,
              status: progress.status,
              estimate: progress.estimate,
            });
          console.log(`Started batch ${handle.batchId} (${progress.total} requests)`);
          if (progress.estimate) console.log(`Estimate: at most ${brl(progress.estimate.totalCost)}`);
          if (progress.status === 'awaiting_approval') {
            console.log(`Waiting for approval: maritaca-batch approve ${handle.batchId} [--budget BRL]`);
          } else {
            console.log(`Status: ${progress.status}`);
          }
        });
      },
    );

  program
    .command('approve')
    .argument('<batchId>')
    .description('approve a batch waiting for approval or for more budget (the batch checks the budget)')
    .option(
      '--budget <brl>',
      'budget in BRL (default: the estimate, or what it takes to finish when waiting for budget)',
      positiveNumber,
    )
    .option('--by <name>', 'who approves (kept in the batch state)', process.env.USER)
    .action(async (batchId: string, opts: { budget?: number; by?: string }, command: Command) => {
      await withClient(command, async (batches) => {
        const handle = batches.getHandle(batchId);
        const progress = await handle.progress();
        if (progress.status !== 'awaiting_approval' && progress.status !== 'awaiting_budget') {
          throw new CliError(`batch ${batchId} is not waiting for approval (status: ${progress.status})`);
        }
        const toFinish = progress.budget
          ? progress.budget.spent + progress.budget.reserved + progress.budget.restMaxCost
          : undefined;
        const budget =
          opts.budget ?? (progress.status === 'awaiting_budget' ? toFinish : progress.estimate?.totalCost);
        if (budget === undefined) throw new CliError(`batch ${batchId} has no estimate yet; pass --budget`);
        const record = await handle.approveBudget(budget, opts.by);
        console.log(`Approved batch ${batchId} with a budget of ${brl(record.budget)}`);
      });
    });

  program
    .command('pause')
    .argument('<batchId>')
    .description('stop starting new calls (calls in flight finish)')
    .action(async (batchId: string, _opts: unknown, command: Command) => {
      await withClient(command, async (batches) => {
        await batches.getHandle(batchId).pause();
        console.log(`Paused batch ${batchId}`);
      });
    });

  program
    .command('resume')
    .argument('<batchId>')
    .description('start calls again after pause, or after awaiting_credentials once the key is fixed')
    .action(async (batchId: string, _opts: unknown, command: Command) => {
      await withClient(command, async (batches) => {
        await batches.getHandle(batchId).resume();
        console.log(`Resumed batch ${batchId}`);
      });
    });

  program
    .command('set-concurrency')
    .argument('<batchId>')
    .argument('<n>', 'calls in flight at once', positiveInteger)
    .description('change how many calls may be in flight, at once')
    .action(async (batchId: string, n: number, _opts: unknown, command: Command) => {
      await withClient(command, async (batches) => {
        const now = await batches.getHandle(batchId).setConcurrency(n);
        console.log(`Batch ${batchId} now runs up to ${now} calls at once`);
      });
    });

  program
    .command('retry-failed')
    .argument('<batchId>')
    .description('start a follow-up batch with the requests that did not succeed (same ids)')
    .option('--concurrency <n>', 'calls in flight at once', positiveInteger)
    .option(
      '--auto-approve-below <brl>',
      'approve automatically when the estimate is below this amount',
      positiveNumber,
    )
    .option('--json', 'print {batchId, retryOf} as one JSON object')
    .action(
      async (
        batchId: string,
        opts: { concurrency?: number; autoApproveBelow?: number; json?: boolean },
        command: Command,
      ) => {
        await withClient(command, async (batches) => {
          const handle = await batches.retryFailed(batchId, {
            ...(opts.concurrency ? { maxConcurrency: opts.concurrency } : {}),
            ...(opts.autoApproveBelow !== undefined ? { autoApproveBelow: opts.autoApproveBelow } : {}),
          });
          if (opts.json) return printJson({ batchId: handle.batchId, retryOf: batchId });
          console.log(`Started follow-up batch ${handle.batchId} for the failed requests of ${batchId}`);
        });
      },
    );

  program
    .command('reject')
    .argument('<batchId>')
    .description('reject a batch that waits for approval; it ends without calling Maritaca')
    .option('--reason <text>', 'why (kept in the batch state)')
    .action(async (batchId: string, opts: { reason?: string }, command: Command) => {
      await withClient(command, async (batches) => {
        const handle = batches.getHandle(batchId);
        const progress = await handle.progress();
        if (progress.status !== 'awaiting_approval' && progress.status !== 'estimating') {
          throw new CliError(`batch ${batchId} is not waiting for approval (status: ${progress.status})`);
        }
        await handle.reject(opts.reason);
        console.log(`Rejected batch ${batchId}`);
      });
    });

  program
    .command('status')
    .argument('<batchId>')
    .description('show where a batch stands; --watch follows it to the end')
    .option(
      '--watch',
      'follow until the batch ends (a live bar on a terminal, one line per change on a pipe)',
    )
    .option(
      '--interval <ms>',
      'milliseconds between reads with --watch after a change (doubling to 5 s while nothing changes)',
      positiveInteger,
      500,
    )
    .option('--json', 'print the progress as JSON (one object per line with --watch)')
    .action(
      async (
        batchId: string,
        opts: { watch?: boolean; interval: number; json?: boolean },
        command: Command,
      ) => {
        await withClient(command, async (batches) => {
          const handle = batches.getHandle(batchId);
          const print = (progress: BatchProgress) =>
            opts.json
              ? printJson({ batchId, ...progress })
              : console.log(`${batchId}: ${progressLine(progress)}`);
          if (!opts.watch) {
            const progress = await handle.progress();
            print(progress);
            const hint = waitingHint(batchId, progress);
            if (hint && !opts.json) console.log(hint);
            return;
          }
          if (opts.json) {
            let last = '';
            let delayMs = opts.interval;
            for (;;) {
              const progress = await handle.progress();
              const key = JSON.stringify({ ...progress, updatedAt: undefined });
              if (key !== last) print(progress);
              delayMs = nextPollDelay(delayMs, key !== last, opts.interval);
              last = key;
              if (FINAL_STATUSES.includes(progress.status)) return endedBatch(batchId, progress);
              await new Promise((resolve) => setTimeout(resolve, delayMs));
            }
          }
          const final = await watchBatch(handle, { intervalMs: opts.interval });
          console.log(`${batchId}: ${progressLine(final)}`);
          endedBatch(batchId, final);
        });
      },
    );

  program
    .command('results')
    .argument('<batchId>')
    .description(
      'write one OpenAI batch output line per request of a batch that has ended (exit 3 while it runs, unless --wait)',
    )
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .option('--wait', 'wait for the batch to end, with a progress line on stderr')
    .option('--merged', 'the latest outcome of each request across the batch and its retry-failed follow-ups')
    .action(
      async (
        batchId: string,
        opts: { output?: string; merged?: boolean; wait?: boolean },
        command: Command,
      ) => {
        await withClient(command, async (batches) => {
          const handle = batches.getHandle(batchId);
          let progress = await handle.progress();
          if (!FINAL_STATUSES.includes(progress.status)) {
            if (!opts.wait) {
              const hint = waitingHint(batchId, progress);
              throw new CliError(
                `batch ${batchId} has not ended: ${progressLine(progress)}${hint ? `; ${hint}` : ''}. ` +
                  'Its results are written once it ends: run this again then, or add --wait',
                ExitCodes.notFinished,
              );
            }
            progress = await watchBatch(handle, { stream: process.stderr });
          }
          const out = opts.output ? createWriteStream(opts.output) : process.stdout;
          const write = async (text: string): Promise<void> => {
            if (!out.write(text)) await once(out, 'drain');
          };
          let count = 0;
          let failed = 0;
          let status: string;
          if (opts.merged) {
            const merged = await batches.mergedResults(batchId);
            status = `merged from ${merged.batchIds.join(', ')}`;
            await write(toOpenAIBatchOutput(merged.results, batchId));
            count = merged.results.length;
            failed = merged.results.filter((o) => !o.ok).length;
          } else {
            try {
              // Streamed from the store: a 100,000-request batch is written without holding it whole.
              for await (const outcome of handle.outcomes()) {
                await write(toOpenAIBatchOutputLine(outcome, batchId) + '\n');
                count++;
                if (!outcome.ok) failed++;
              }
              status = progress.status;
            } catch (err) {
              if (!(err instanceof BatchRequestFailedError) || count > 0) throw err;
              const stored = await outcomesOf(handle);
              status = stored.status;
              await write(toOpenAIBatchOutput(stored.outcomes, batchId));
              count = stored.outcomes.length;
              failed = stored.outcomes.filter((o) => !o.ok).length;
            }
          }
          if (opts.output) {
            out.end();
            await once(out, 'finish');
          }
          process.stderr.write(
            `Batch ${batchId} ${status}: ${count} result(s), ${failed} failed` +
              (opts.output ? `, written to ${opts.output}` : '') +
              '\n',
          );
          // Scripts tell "every request succeeded" from "some did not" by the exit code alone.
          if (failed > 0 || count < progress.total) {
            throw new CliError(
              `batch ${batchId}: ${progress.total - count + failed} of ${progress.total} request(s) without a successful result`,
              ExitCodes.incomplete,
            );
          }
        });
      },
    );

  program
    .command('purge')
    .argument('<batchId>')
    .description("delete a finished batch's objects from the store (uploaded requests and outcomes)")
    .action(async (batchId: string, _opts: unknown, command: Command) => {
      await withClient(command, async (batches) => {
        const deleted = await batches.purge(batchId);
        console.log(`Deleted ${deleted} object(s) of batch ${batchId} from ${batches.store.url}`);
      });
    });

  program
    .command('actions')
    .argument('<batchId>')
    .description('count the Temporal actions a batch used (every run, plus its heartbeats) and their price')
    .option(
      '--usd-per-million <usd>',
      'price of a million actions (default: Temporal Cloud list price, 50)',
      positiveNumber,
    )
    .option('--json', 'print {byType, total, usdPerMillion, costUsd} as one JSON object')
    .action(async (batchId: string, opts: { usdPerMillion?: number; json?: boolean }, command: Command) => {
      await withClient(command, async (batches) => {
        const actions = await batches.getHandle(batchId).temporalActions(opts.usdPerMillion);
        if (opts.json) return printJson(actions);
        for (const [type, count] of Object.entries(actions.byType))
          console.log(`${type.padEnd(20)} ${count}`);
        console.log(
          `${'total'.padEnd(20)} ${actions.total}: US$ ${actions.costUsd.toFixed(4)} at US$ ${actions.usdPerMillion} per million`,
        );
      });
    });

  program
    .command('cancel')
    .argument('<batchId>')
    .description('cancel a batch: calls in flight are aborted, results so far are kept')
    .action(async (batchId: string, _opts: unknown, command: Command) => {
      await withClient(command, async (batches) => {
        const handle = batches.getHandle(batchId);
        const progress = await handle.progress();
        if (FINAL_STATUSES.includes(progress.status)) {
          throw new CliError(`batch ${batchId} has already ended (status: ${progress.status})`);
        }
        await handle.cancel();
        console.log(`Cancellation requested for batch ${batchId}`);
      });
    });

  program
    .command('list')
    .description('list recent batches, newest first')
    .option('--status <status>', 'only batches in this status (e.g. awaiting_approval, running, completed)')
    .option('--limit <n>', 'at most this many batches', positiveInteger, 20)
    .option('--json', 'print one JSON object per batch')
    .action(async (opts: { status?: string; limit: number; json?: boolean }, command: Command) => {
      await withClient(command, async (batches) => {
        let shown = 0;
        for await (const execution of batches.client.workflow.list({
          query: `WorkflowType = '${WORKFLOW_TYPE}'`,
        })) {
          // Runs that continued as new are part of the batch's latest run: one row per batch.
          if (execution.status.name === 'CONTINUED_AS_NEW') continue;
          const status = await batchStatus(
            batches,
            execution.workflowId,
            execution.runId,
            execution.status.name,
          );
          if (opts.status && status.status !== opts.status) continue;
          const row = {
            batchId: execution.workflowId,
            status: status.status,
            completed: status.completed,
            total: status.total,
            actualCost: status.actualCost,
            startedAt: execution.startTime.toISOString(),
          };
          if (opts.json) printJson(row);
          else
            console.log(
              `${row.batchId}  ${row.status.padEnd(17)} ${String(row.completed ?? '-').padStart(6)}/${String(row.total ?? '-').padEnd(6)} ${brl(row.actualCost).padEnd(14)} ${row.startedAt}`,
            );
          if (++shown >= opts.limit) break;
        }
        if (shown === 0 && !opts.json) console.log('No batches found.');
      });
    });
}

/** A bar for the upload of a batch file, on a terminal only (a pipe gets nothing to parse around). */
function uploadBar(json: boolean): { update(sent: number, total: number): void; stop(): void } | undefined {
  if (json || !process.stderr.isTTY) return undefined;
  const bar = new SingleBar(
    {
      format: 'Uploading {bar} {percentage}% | {value}/{total} bytes',
      stream: process.stderr,
      hideCursor: true,
    },
    Presets.shades_classic,
  );
  let started = false;
  return {
    update(sent, total) {
      if (!started) bar.start(total, 0);
      started = true;
      bar.update(sent);
    },
    stop: () => started && bar.stop(),
  };
}

/**
 * Waits until the batch has its estimate, backing off from 100 ms to 2 s between reads, and
 * ends as soon as the batch does (a batch whose input cannot be read fails while estimating).
 */
async function waitWhileEstimating(handle: BatchHandle): Promise<BatchProgress> {
  let delay = 100;
  for (;;) {
    const progress = await handle.progress();
    if (progress.status !== 'estimating') return progress;
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(2000, delay * 2);
  }
}

/**
 * Ends a command that followed a batch to its end with the exit code the end deserves: the
 * batch's own reason when its workflow failed, a count when not every request succeeded.
 */
function endedBatch(batchId: string, progress: BatchProgress): void {
  const code = exitCodeOf(progress);
  if (code === ExitCodes.error) {
    throw new CliError(`batch ${batchId} failed: ${progress.failure ?? 'see the Temporal UI'}`, code);
  }
  if (code === ExitCodes.incomplete) {
    throw new CliError(
      `batch ${batchId} ended ${progress.status}: ${progress.succeeded} of ${progress.total} request(s) succeeded, ${progress.failed} failed`,
      code,
    );
  }
}

/**
 * Status and counts of one run: queried while it runs, read from its result once it closed (the
 * run's own, so a running re-use of the id is never waited on). A row that cannot be read (a payload
 * encrypted with a key this client lacks, a worker down) still shows what the server knows.
 */
async function batchStatus(
  batches: MaritacaBatchClient,
  batchId: string,
  runId: string,
  executionStatus: WorkflowExecutionStatusName,
): Promise<{ status: string; completed?: number; total?: number; actualCost?: number }> {
  const run = batches.client.workflow.getHandle(batchId, runId);
  try {
    if (executionStatus === 'RUNNING') {
      const p = await run.query(progressQuery);
      return { status: p.status, completed: p.completed, total: p.total, actualCost: p.actualCost };
    }
    if (executionStatus === 'COMPLETED') {
      const r = (await run.result()) as BatchResult;
      const total = r.counts?.total ?? r.estimate?.totalRequests;
      const completed = r.counts
        ? r.counts.succeeded + r.counts.failed
        : r.resultsRef
          ? undefined
          : r.results.length;
      return {
        status: r.status,
        ...(completed !== undefined ? { completed } : {}),
        ...(total !== undefined ? { total } : {}),
        actualCost: r.actualCost,
      };
    }
  } catch {
    // Fall through to what the server itself says about the run.
  }
  if (executionStatus === 'FAILED' || executionStatus === 'TIMED_OUT' || executionStatus === 'TERMINATED') {
    return { status: 'failed' };
  }
  if (executionStatus === 'CANCELLED') return { status: 'cancelled' };
  return { status: executionStatus.toLowerCase() };
}
