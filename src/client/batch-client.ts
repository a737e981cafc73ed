import { chatFeatureIssues } from './chat-features';
import { actionsInHistory } from './temporal-actions';
import { randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import {
  Client,
  Connection,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type WorkflowHandle,
} from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure } from '@temporalio/common';
import {
  DEFAULT_MAX_CONCURRENCY,
  DEFAULT_MODEL,
  DEFAULT_TASK_QUEUE,
  markdownBrl,
  FailureTypes,
  FINAL_STATUSES,
  WORKFLOW_TYPE,
  approveBudgetSchema,
  approveBudgetUpdate,
  approveSchema,
  approveSignal,
  pauseSignal,
  resumeSignal,
  setConcurrencyUpdate,
  estimateQuery,
  progressQuery,
  rejectSignal,
  validateWith,
  type ApprovalRecord,
  type ApproveSignal,
  type BatchEstimate,
  type BatchInput,
  type BatchOptions,
  type BatchProgress,
  type BatchRequest,
  type BatchResult,
  type ChatResult,
  type RequestError,
  type RequestOutcome,
  type ResultsRef,
  estimateInputOf,
  knownModelsOf,
  parsePriceTable,
  resolveCalls,
  structuredTarget,
  withCost,
  DEFAULT_STRUCTURED_OUTPUT_RETRIES,
  DEFAULT_TEMPORAL_ACTION_PRICE_USD,
  type TemporalActions,
  type PriceTable,
} from '../shared';
import { loadPriceTable } from '../pricing';
import { codecFromEnv } from '../codec/aes-gcm-codec';
import { estimateBatchCost } from '../activities/estimate-cost';
import {
  InvalidBatchFileError,
  collectOutcomes,
  parseBatchJsonl,
  parseBatchJsonlFile,
  sourceUrl,
  storeFromEnv,
  type BatchStore,
} from '../store';
import { followUpId, followUpsOf, inputOf, outcomesOf, rootOf, type FollowUpMemo } from './follow-up';
import { validateBatchInput } from './validate';
import {
  estimateSeedInputs,
  followCompletions,
  seedBatchOptions,
  seedRequests,
  seedSlot,
  type SeedBatchOptions,
  type SeedEstimateOptions,
  type SeedInput,
} from './seed-helpers';
import {
  BatchFailedError,
  BatchIdInUseError,
  BatchNotFoundError,
  BatchRequestFailedError,
  BatchUpdateRefusedError,
  InvalidBatchInputError,
  MaritacaBatchError,
  type MaritacaRequestError,
} from './errors';

/** Options of {@link MaritacaBatchClient}. */
export interface MaritacaBatchClientOptions {
  /** A Temporal client to use; when absent one is created from `connection`/`address`. */
  client?: Client;
  /** Task queue the batch workers listen on (default `TEMPORAL_TASK_QUEUE`, then `maritaca-batch`). */
  taskQueue?: string;
  /**
   * Where uploaded requests and stored outcomes live: the same store the workers use (default
   * {@link storeFromEnv}: `MARITACA_STORE_URL`, `MARITACA_S3_ENDPOINT`, the encryption keys).
   */
  store?: BatchStore;
  /**
   * The models batches may use and their prices, merged over the built-in table and validated
   * like a prices file (default {@link loadPriceTable}: `MARITACA_PRICES_FILE`, else built-in).
   * Give the workers the same table, or they will not price a model only it knows.
   */
  prices?: PriceTable;
}

/** Options of {@link MaritacaBatchClient.connect}; unset values come from the environment. */
export interface ConnectOptions {
  /** `host:port` of the Temporal frontend (default `TEMPORAL_ADDRESS`, then `localhost:7233`). */
  address?: string;
  /** Namespace (default `TEMPORAL_NAMESPACE`, then `default`). */
  namespace?: string;
  /** Task queue (default `TEMPORAL_TASK_QUEUE`, then `maritaca-batch`). */
  taskQueue?: string;
  /** The batch store (default {@link storeFromEnv}). */
  store?: BatchStore;
  /** The price table (default {@link loadPriceTable}); see {@link MaritacaBatchClientOptions.prices}. */
  prices?: PriceTable;
}

/** Per-start options that are not part of the workflow input. */
export interface StartOptions {
  /** Workflow id of the batch; default `maritaca-batch-<uuid>`. Starting an id already running fails. */
  batchId?: string;
  /** Hears the upload of a batch file to the store: bytes read so far and the file's size. */
  onUploadProgress?: (sent: number, total: number) => void;
  /**
   * Start again under the id of a batch that has ended: the new run stores its outcomes beside the
   * old run's, and the handle reads the new run's. Without it, an id that names any batch, running
   * or ended, is refused.
   */
  rerun?: boolean;
}

/**
 * Starts and drives durable Maritaca batches.
 *
 * @example
 * const batches = await MaritacaBatchClient.connect();
 * const handle = await batches.start(
 *   [{ messages: [{ role: 'user', content: 'Qual é a capital do Brasil?' }] }],
 *   { maxConcurrency: 3 },
 * );
 * console.log(await handle.estimate());
 * await handle.approve();
 * const { results } = await handle.result();
 */
export class MaritacaBatchClient {
  /** The underlying Temporal client. */
  readonly client: Client;
  /** Task queue batches are started on. */
  readonly taskQueue: string;
  /** Where uploaded requests and stored outcomes live. */
  readonly store: BatchStore;
  /** The models batches may use, and their prices: input naming any other model is refused. */
  readonly prices: PriceTable;
  private readonly ownedConnection: Connection | undefined;

  /**
   * @throws {InvalidPriceTableError} when `options.prices`, or the file `MARITACA_PRICES_FILE`
   *   names, is not a valid price table.
   */
  constructor(options: MaritacaBatchClientOptions & { client: Client }, ownedConnection?: Connection) {
    this.client = options.client;
    this.taskQueue = options.taskQueue ?? process.env.TEMPORAL_TASK_QUEUE ?? DEFAULT_TASK_QUEUE;
    this.store = options.store ?? storeFromEnv();
    this.prices = options.prices ? parsePriceTable(options.prices, 'prices option') : loadPriceTable();
    this.ownedConnection = ownedConnection;
  }

  /** Connects to Temporal (address, namespace and task queue from options or the environment). */
  static async connect(options: ConnectOptions = {}): Promise<MaritacaBatchClient> {
    const address = options.address ?? process.env.TEMPORAL_ADDRESS ?? 'localhost:7233';
    const namespace = options.namespace ?? process.env.TEMPORAL_NAMESPACE ?? 'default';
    // A bad prices file is refused before a connection is opened that nothing would close.
    const prices = options.prices ? parsePriceTable(options.prices, 'prices option') : loadPriceTable();
    let connection: Connection;
    try {
      connection = await Connection.connect({ address });
    } catch (err) {
      throw new MaritacaBatchError(`Could not connect to Temporal at ${address}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const codec = codecFromEnv();
    const client = new Client({
      connection,
      namespace,
      ...(codec ? { dataConverter: { payloadCodecs: [codec] } } : {}),
    });
    return new MaritacaBatchClient(
      {
        client,
        ...(options.taskQueue ? { taskQueue: options.taskQueue } : {}),
        ...(options.store ? { store: options.store } : {}),
        prices,
      },
      connection,
    );
  }

  /**
   * Validates the input and starts a batch. Nothing is started when the input is invalid:
   * an {@link InvalidBatchInputError} names every bad field.
   */
  async start(
    requests: BatchRequest[],
    options: BatchOptions = {},
    start: StartOptions = {},
  ): Promise<BatchHandle> {
    const input = validateBatchInput({ requests, options }, { prices: this.prices });
    const valid = input.requests!;
    return this.startValidated(input, valid.length, this.detailsEstimate(valid, input.options), start);
  }

  /**
   * Starts a batch from a local JSONL file (OpenAI batch input or short form) of any size: the
   * whole file is validated here first (an {@link InvalidBatchFileError} lists every bad line),
   * then uploaded to the batch store (multipart on S3, sealed when encryption is on), and the
   * workers page it from there, so they need no access to this machine's disk.
   *
   * @example
   * const handle = await batches.startFromFile('perguntas.jsonl', { model: 'sabiazinho-4' }, {
   *   onUploadProgress: (sent, total) => console.log(`${sent}/${total} bytes`),
   * });
   */
  async startFromFile(
    file: string,
    options: BatchOptions = {},
    start: StartOptions = {},
  ): Promise<BatchHandle> {
    const absolute = path.resolve(file);
    const { requests } = await parseBatchJsonlFile(absolute, {
      knownModels: knownModelsOf(this.prices),
      requestIssues: (request) => chatFeatureIssues(request, options),
    });
    validateBatchInput({ requests, options }, { inline: false, prices: this.prices });
    const batchId = start.batchId ?? newBatchId();
    // Refused before the upload, so a taken id never gets an orphan object beside its own.
    if (start.batchId) await this.refuseTakenId(start.batchId, start.rerun === true);
    const { size } = await stat(absolute);
    const url = await this.store.putRequests(batchId, absolute, (sent) =>
      start.onUploadProgress?.(sent, size),
    );
    const input: BatchInput = { source: { type: 'jsonl', url, count: requests.length }, options };
    try {
      return await this.startValidated(input, requests.length, this.detailsEstimate(requests, options), {
        ...start,
        batchId,
      });
    } catch (err) {
      // Nothing started, so nothing will ever read the upload (and only the upload goes).
      await this.store.remove([url]).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Starts a batch from a JSONL object already in the store's reach (`s3://bucket/key`, or
   * `file:///path` on a volume every worker mounts) without copying it: it is read once here to
   * validate every line and count the requests, then the workers page it with ranged reads.
   * An object that cannot be read is refused before anything starts, naming it and quoting the
   * store's error.
   *
   * @example
   * const handle = await batches.startFromObject('s3://my-bucket/input/2026-11-29.jsonl');
   */
  async startFromObject(
    url: string,
    options: BatchOptions = {},
    start: StartOptions = {},
  ): Promise<BatchHandle> {
    await this.store.checkReadable(url);
    let requests: BatchRequest[];
    try {
      requests = parseBatchJsonl(await this.store.readRequestsText(url), {
        knownModels: knownModelsOf(this.prices),
        requestIssues: (request) => chatFeatureIssues(request, options),
      }).requests;
    } catch (err) {
      if (err instanceof InvalidBatchFileError)
        throw new InvalidBatchFileError(err.problems, err.totalProblems, url);
      throw err;
    }
    validateBatchInput({ requests, options }, { inline: false, prices: this.prices });
    const input: BatchInput = { source: { type: 'jsonl', url, count: requests.length }, options };
    return this.startValidated(input, requests.length, this.detailsEstimate(requests, options), start);
  }

  /**
   * Deletes every object the store holds for a batch that has ended (its uploaded requests and
   * its outcomes) and returns how many there were. Objects you put in the bucket yourself (a
   * file given to {@link startFromObject}) are kept. Refused while the batch runs.
   */
  async purge(batchId: string): Promise<number> {
    const progress = await this.getHandle(batchId).progress();
    if (!FINAL_STATUSES.includes(progress.status)) {
      throw new MaritacaBatchError(
        `batch ${batchId} has not ended (status: ${progress.status}); cancel it first or wait for it to end`,
      );
    }
    return this.store.purge(batchId);
  }

  /**
   * The client's own estimate with the client's price table, for the batch's details in the
   * Temporal UI (the worker's estimate, with the worker's table, is the one the budget uses).
   */
  private detailsEstimate(
    requests: BatchRequest[],
    options: BatchOptions | undefined,
  ): DetailsEstimate | undefined {
    return estimateBatchCost(estimateInputOf(requests, options), this.prices);
  }

  private async startValidated(
    input: BatchInput,
    count: number,
    estimate: DetailsEstimate | undefined,
    start: StartOptions,
  ): Promise<BatchHandle> {
    const batchId = start.batchId ?? newBatchId();
    const model = input.options?.model ?? DEFAULT_MODEL;
    const handle = await this.startWorkflow(batchId, start.rerun === true, {
      args: [input],
      staticSummary: `Maritaca batch: ${count} request(s), model ${model}`,
      staticDetails: [
        `**Requests:** ${count} · **model:** ${model} · **max concurrency:** ${input.options?.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY}`,
        estimate
          ? `**Estimate:** ${markdownBrl(estimate.totalCost)} (${estimate.totalInputTokens} input tokens, up to ${estimate.totalOutputTokens} output tokens) · **never more than** ${markdownBrl(estimate.maxCost)}`
          : `**Estimate:** made by the worker (prices checked on ${this.prices.checkedOn})`,
        input.options?.autoApproveBelow !== undefined
          ? `**Auto-approved below:** ${markdownBrl(input.options.autoApproveBelow)}`
          : '**Approval:** `approve` signal or `approveBudget` update',
      ].join('\n\n'),
    });
    return new BatchHandle(handle, this.store);
  }

  /**
   * Starts the workflow under `batchId`, refusing an id that names a batch already (a running one
   * always; an ended one unless `rerun`) with a {@link BatchIdInUseError}.
   */
  private async startWorkflow(
    batchId: string,
    rerun: boolean,
    options: {
      args: [BatchInput];
      staticSummary: string;
      staticDetails?: string;
      memo?: Record<string, unknown>;
    },
  ): Promise<WorkflowHandle> {
    try {
      return (await this.client.workflow.start(WORKFLOW_TYPE, {
        taskQueue: this.taskQueue,
        workflowId: batchId,
        workflowIdReusePolicy: rerun ? 'ALLOW_DUPLICATE' : 'REJECT_DUPLICATE',
        ...options,
      })) as WorkflowHandle;
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        const running = await this.client.workflow
          .getHandle(batchId)
          .describe()
          .then((d) => d.status.name === 'RUNNING')
          .catch(() => true);
        throw new BatchIdInUseError(batchId, running, err);
      }
      throw err;
    }
  }

  /** Throws {@link BatchIdInUseError} when `batchId` names a batch that may not be started again. */
  private async refuseTakenId(batchId: string, rerun: boolean): Promise<void> {
    let status: string;
    try {
      status = (await this.client.workflow.getHandle(batchId).describe()).status.name;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return;
      throw err;
    }
    if (status === 'RUNNING') throw new BatchIdInUseError(batchId, true);
    if (!rerun) throw new BatchIdInUseError(batchId, false);
  }

  /**
   * The guide's `abatch_with_concurrency`: runs every input through a durable batch (approved on
   * your behalf with `budget`, default the estimate) and resolves to the `ChatResult`s in input
   * order. With `returnExceptions` a failed request's slot holds a {@link MaritacaRequestError};
   * without it the promise rejects with the first failure ({@link BatchRequestFailedError}).
   *
   * @example
   * const results = await batches.abatchWithConcurrency(
   *   [[{ role: 'user', content: 'Qual é a capital do Brasil?' }], 'Qual é a capital do Chile?'],
   *   { maxConcurrency: 3 },
   * );
   * console.log(results[0].generations[0].message.content);
   *
   * @example
   * // Extraction, as with LangChain's with_structured_output: each value is in `parsed`.
   * const pessoas = await batches.abatchWithConcurrency([['human', 'João tem 25 anos']], {
   *   structuredOutput: { schema: { title: 'Pessoa', type: 'object', properties: { nome: { type: 'string' } } } },
   * });
   * console.log(parsedOf(pessoas[0]));
   */
  async abatchWithConcurrency(
    inputs: readonly SeedInput[],
    options: SeedBatchOptions & { returnExceptions: true },
  ): Promise<(ChatResult | MaritacaRequestError)[]>;
  async abatchWithConcurrency(
    inputs: readonly SeedInput[],
    options?: SeedBatchOptions & { returnExceptions?: false },
  ): Promise<ChatResult[]>;
  async abatchWithConcurrency(
    inputs: readonly SeedInput[],
    options: SeedBatchOptions & { returnExceptions?: boolean } = {},
  ): Promise<(ChatResult | MaritacaRequestError)[]> {
    const handle = await this.startSeedBatch(
      inputs,
      options,
      options.returnExceptions ?? false,
      'abatchWithConcurrency',
    );
    const { results } = await handle.result();
    return results.map(seedSlot);
  }

  /**
   * The guide's `batch_with_progress`: like {@link abatchWithConcurrency}, calling
   * `callback(completed, total, result)` once per finished request (`completed` runs 1..total in
   * the order requests finish). Resolves to every `ChatResult` in input order.
   *
   * @example
   * await batches.batchWithProgress(inputs, {
   *   maxConcurrency: 3,
   *   callback: (done, total) => console.log(`Progresso: ${done}/${total}`),
   * });
   */
  async batchWithProgress(
    inputs: readonly SeedInput[],
    options: SeedBatchOptions & {
      callback?: (completed: number, total: number, result: ChatResult) => void | Promise<void>;
      /** How often to look for newly finished requests (default 100 ms). */
      pollIntervalMs?: number;
    } = {},
  ): Promise<ChatResult[]> {
    const handle = await this.startSeedBatch(inputs, options, false, 'batchWithProgress');
    if (options.callback) await followCompletions(handle, options.callback, options.pollIntervalMs ?? 100);
    const { results } = await handle.result();
    return results.map((outcome) => seedSlot(outcome) as ChatResult);
  }

  /**
   * The guide's `abatch_estimate_cost`: what the batch would cost at most, without starting a
   * workflow or calling the model (the same estimator the workflow runs).
   *
   * @example
   * const estimate = await batches.abatchEstimateCost(inputs, { maxOutputTokens: 500 });
   * if (estimate.totalCost > 1) throw new Error('over budget');
   */
  async abatchEstimateCost(
    inputs: readonly SeedInput[],
    options: SeedEstimateOptions = {},
  ): Promise<BatchEstimate> {
    return estimateSeedInputs(inputs, options, this.prices);
  }

  private async startSeedBatch(
    inputs: readonly SeedInput[],
    options: SeedBatchOptions,
    returnExceptions: boolean,
    approvedBy: string,
  ): Promise<BatchHandle> {
    const requests = seedRequests(inputs, options);
    const batchOptions = seedBatchOptions(options, returnExceptions);
    // Validated before the estimate below, which would trip over a malformed message.
    validateBatchInput({ requests, options: batchOptions }, { prices: this.prices });
    // The guide's functions never stop for money: approve the batch's worst case, with every
    // re-ask a structured answer may need billed on top.
    const worst = estimateBatchCost(estimateInputOf(requests, batchOptions), this.prices).maxCost;
    const structured = resolveCalls(requests, batchOptions).some((call) => structuredTarget(call) !== null);
    const reasks = structured
      ? (batchOptions.structuredOutputRetries ?? DEFAULT_STRUCTURED_OUTPUT_RETRIES)
      : 0;
    const budget = options.budget ?? Math.ceil(worst * (1 + reasks) * 1e9) / 1e9;
    const handle = await this.start(
      requests,
      batchOptions,
      options.batchId ? { batchId: options.batchId } : {},
    );
    await handle.approve({ approvedBy, budget });
    return handle;
  }

  /**
   * Starts a follow-up batch with every request of `batchId` that has no successful outcome
   * (failed, or never run because the batch was cancelled or ran out of budget), under the same
   * ids and options (`options` overrides some). Successful requests are never sent again. The
   * follow-up is `<root>-retry-<n>` and waits for approval like any batch, unless auto-approved.
   */
  async retryFailed(batchId: string, options: BatchOptions = {}): Promise<BatchHandle> {
    const original = this.getHandle(batchId);
    const { outcomes } = await outcomesOf(original);
    const succeeded = new Set(outcomes.filter((o) => o.ok).map((o) => o.id));
    const input = await inputOf(this.client, batchId);
    const originalRequests =
      input.requests ?? parseBatchJsonl(await this.store.readRequestsText(sourceUrl(input.source!))).requests;
    const requests = resolveCalls(originalRequests, input.options).flatMap((call, index) =>
      succeeded.has(call.requestId) ? [] : [{ ...originalRequests[index]!, id: call.requestId }],
    );
    if (requests.length === 0)
      throw new MaritacaBatchError(`Batch ${batchId} has no failed requests to retry`);
    const root = await rootOf(this.client, batchId);
    const n = (await followUpsOf(this.client, root)).length + 1;
    const memo: FollowUpMemo = { retryOf: batchId, rootBatchId: root };
    const merged = validateBatchInput(
      { requests, options: { ...input.options, ...options } },
      { prices: this.prices },
    );
    const handle = await this.startWorkflow(followUpId(root, n), false, {
      args: [merged],
      memo: { ...memo },
      staticSummary: `Maritaca batch: retry ${n} of ${root}, ${requests.length} request(s)`,
    });
    return new BatchHandle(handle, this.store);
  }

  /**
   * The latest outcome of every request across a batch and its follow-ups (given any batch of
   * the chain), in the root batch's input order. Waits for unfinished batches of the chain.
   */
  async mergedResults(batchId: string): Promise<{ batchIds: string[]; results: RequestOutcome[] }> {
    const root = await rootOf(this.client, batchId);
    const batchIds = [root, ...(await followUpsOf(this.client, root))];
    const latest = new Map<string, RequestOutcome>();
    const order: string[] = [];
    for (const id of batchIds) {
      const { outcomes } = await outcomesOf(this.getHandle(id));
      for (const outcome of outcomes) {
        if (!latest.has(outcome.id)) order.push(outcome.id);
        const previous = latest.get(outcome.id);
        latest.set(outcome.id, previous ? { ...outcome, index: previous.index } : outcome);
      }
    }
    const results = order.map((id) => latest.get(id)!).sort((a, b) => a.index - b.index);
    return { batchIds, results };
  }

  /** A handle to an existing batch by its id (no call is made until you use it). */
  getHandle(batchId: string): BatchHandle {
    return new BatchHandle(this.client.workflow.getHandle(batchId), this.store);
  }

  /** Closes the connection if this client opened it. */
  async close(): Promise<void> {
    await this.ownedConnection?.close();
  }
}

/**
 * The message that says what went wrong: an activity's failure wraps the activity's own error
 * ("Activity task failed"), which names the object, the status or the server's words.
 */
function innermostMessage(failure: Error | undefined): string {
  let current: Error | undefined = failure;
  while (
    current &&
    (current instanceof ActivityFailure || current instanceof ChildWorkflowFailure) &&
    current.cause
  ) {
    current = current.cause;
  }
  return current?.message ?? '';
}

/** What the batch's details show of the client's estimate. */
interface DetailsEstimate {
  totalCost: number;
  maxCost: number;
  totalInputTokens: number;
  totalOutputTokens: number;
}

function newBatchId(): string {
  return `maritaca-batch-${randomUUID()}`;
}

/** Drives one batch: read its estimate and progress, approve or reject it, wait for its result. */
export class BatchHandle {
  constructor(
    private readonly workflow: WorkflowHandle,
    private readonly store: BatchStore = storeFromEnv(),
  ) {}

  /** The underlying Temporal workflow handle (for queries and signals by name). */
  get workflowHandle(): WorkflowHandle {
    return this.workflow;
  }

  /** The batch id (its workflow id). */
  get batchId(): string {
    return this.workflow.workflowId;
  }

  /**
   * The Temporal actions the batch used, by type, and their price at `usdPerMillion` (default
   * Temporal Cloud's list price, US$ 50): counted from the history of every run, plus the
   * heartbeats its calls reported (known once it has ended). Queries are not counted.
   *
   * @example
   * const { total, costUsd } = await handle.temporalActions(); // e.g. 63 actions, US$ 0.00315
   */
  async temporalActions(usdPerMillion = DEFAULT_TEMPORAL_ACTION_PRICE_USD): Promise<TemporalActions> {
    const byType = await this.call(() => actionsInHistory(this.workflow));
    const { status } = await this.call(() => this.workflow.describe());
    if (status.name === 'COMPLETED') {
      const { heartbeats } = await this.resultWithoutOutcomes();
      if (heartbeats) byType.heartbeat = heartbeats;
    }
    return withCost(byType, usdPerMillion);
  }

  /** The cost estimate, or `null` while it is being computed. */
  async estimate(): Promise<BatchEstimate | null> {
    return this.call(() => this.workflow.query(estimateQuery));
  }

  /**
   * Where the batch stands (status, counts, costs). A batch whose workflow failed, was terminated
   * or timed out reports `failed` with the reason in `failure`, whatever phase it was in, so a
   * loop that waits for a final status always ends.
   */
  async progress(): Promise<BatchProgress> {
    const progress = await this.call(() => this.workflow.query(progressQuery));
    if (FINAL_STATUSES.includes(progress.status) && progress.status !== 'failed') return progress;
    const { status } = await this.call(() => this.workflow.describe());
    if (status.name === 'RUNNING' || status.name === 'CONTINUED_AS_NEW') return progress;
    if (status.name === 'CANCELLED') return { ...progress, status: 'cancelled', inFlight: 0 };
    if (status.name === 'COMPLETED')
      return { ...progress, status: (await this.resultWithoutOutcomes()).status };
    return { ...progress, status: 'failed', inFlight: 0, failure: await this.failureReason(status.name) };
  }

  /** Why the workflow closed without a result (its failure's message, or how it was closed). */
  private async failureReason(closedAs: string): Promise<string> {
    try {
      await this.workflow.result();
      return `the workflow closed as ${closedAs.toLowerCase()}`;
    } catch (err) {
      if (err instanceof WorkflowFailedError) {
        const cause = err.cause;
        const message = innermostMessage(cause) || err.message;
        return closedAs === 'FAILED' ? message : `${closedAs.toLowerCase().replace('_', ' ')}: ${message}`;
      }
      return (err as Error).message;
    }
  }

  /**
   * Every outcome, in input order, one at a time: large batches are streamed from the store, so
   * memory stays flat whatever the size. Waits for the batch to end, like {@link result}.
   *
   * @example
   * for await (const outcome of handle.outcomes()) if (!outcome.ok) console.log(outcome.id, outcome.error.message);
   */
  async *outcomes(): AsyncGenerator<RequestOutcome> {
    const result = await this.resultWithoutOutcomes();
    if (result.resultsRef) yield* this.store.readOutcomes(result.resultsRef);
    else yield* result.results;
  }

  /** Approves the budget (default: the estimate's total). A bad budget throws before anything is sent. */
  async approve(approval: ApproveSignal = {}): Promise<void> {
    const parsed = validateWith(approveSchema, approval);
    if (!parsed.ok) throw new InvalidBatchInputError(parsed.issues, 'approval');
    await this.call(() => this.workflow.signal(approveSignal, parsed.value));
  }

  /**
   * Approves a budget through the `approveBudget` update and returns the approval record. Unlike
   * {@link approve}, a refusal comes back: {@link BatchUpdateRefusedError} carries the batch's reason
   * (not waiting for approval, budget below what was spent, not above the current budget).
   */
  async approveBudget(budget: number, approvedBy?: string): Promise<ApprovalRecord> {
    const parsed = validateWith(approveBudgetSchema, {
      budget,
      ...(approvedBy !== undefined ? { approvedBy } : {}),
    });
    if (!parsed.ok) throw new InvalidBatchInputError(parsed.issues, 'approval');
    return this.update('approveBudget', () =>
      this.workflow.executeUpdate(approveBudgetUpdate, {
        args: [{ budget, ...(approvedBy !== undefined ? { approvedBy } : {}) }],
      }),
    );
  }

  /** Changes how many calls may be in flight, effective at once; returns the new cap. */
  async setConcurrency(concurrency: number): Promise<number> {
    return this.update('setConcurrency', () =>
      this.workflow.executeUpdate(setConcurrencyUpdate, { args: [concurrency] }),
    );
  }

  /** Stops starting new calls; calls in flight finish. Status becomes `paused`. */
  async pause(): Promise<void> {
    await this.call(() => this.workflow.signal(pauseSignal));
  }

  /** Starts calls again after {@link pause}. */
  async resume(): Promise<void> {
    await this.call(() => this.workflow.signal(resumeSignal));
  }

  /** Rejects the batch while it waits for approval; it ends as `rejected` without calling Maritaca. */
  async reject(reason?: string): Promise<void> {
    await this.call(() => this.workflow.signal(rejectSignal, reason === undefined ? {} : { reason }));
  }

  /** Cancels the batch: in-flight calls are aborted, results so far are kept and returned by {@link result}. */
  async cancel(): Promise<void> {
    await this.call(() => this.workflow.cancel());
  }

  /**
   * Waits for the batch to end and returns its outcome per request, in input order. Throws
   * {@link BatchRequestFailedError} when a request failed and `returnExceptions` was false.
   */
  async result(): Promise<BatchResult> {
    const result = await this.resultWithoutOutcomes();
    // Large batches keep their outcomes in the store; read them back in input order.
    if (result.resultsRef)
      return { ...result, results: await collectOutcomes(this.store.readOutcomes(result.resultsRef)) };
    return result;
  }

  /** Outcomes a failed batch wrote to the store before it failed, in input order. */
  async storedOutcomes(ref: ResultsRef): Promise<RequestOutcome[]> {
    return collectOutcomes(this.store.readOutcomes(ref));
  }

  /** The workflow's own result: large batches' outcomes are left in the store (`resultsRef`). */
  private async resultWithoutOutcomes(): Promise<BatchResult> {
    try {
      return (await this.call(() => this.workflow.result())) as BatchResult;
    } catch (err) {
      if (err instanceof WorkflowFailedError) {
        const cause = err.cause;
        if (cause instanceof ApplicationFailure && cause.type === FailureTypes.RequestFailed) {
          const details = cause.details?.[0] as {
            id: string;
            index: number;
            error: RequestError;
            attempts: number;
            resultsRef?: ResultsRef;
          };
          throw new BatchRequestFailedError(cause.message, details, err);
        }
        throw new BatchFailedError(this.batchId, innermostMessage(cause) || err.message, err);
      }
      throw err;
    }
  }

  private async update<T>(name: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) {
        throw new BatchUpdateRefusedError(this.batchId, name, err.cause?.message ?? err.message, err);
      }
      if (err instanceof WorkflowNotFoundError) {
        // Updates cannot reach a batch that has ended; say so rather than "not found".
        const ended = await this.workflow.describe().catch(() => undefined);
        if (ended) {
          const status = await this.progress()
            .then((p) => p.status)
            .catch(() => ended.status.name.toLowerCase());
          throw new BatchUpdateRefusedError(
            this.batchId,
            name,
            `the batch has ended (status: ${status})`,
            err,
          );
        }
        throw new BatchNotFoundError(this.batchId, err);
      }
      throw err;
    }
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new BatchNotFoundError(this.batchId, err);
      throw err;
    }
  }
}
