import { randomUUID } from 'node:crypto';
import {
  Client,
  Connection,
  WorkflowFailedError,
  WorkflowNotFoundError,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import {
  DEFAULT_MODEL,
  DEFAULT_TASK_QUEUE,
  FailureTypes,
  WORKFLOW_TYPE,
  approveSchema,
  approveSignal,
  batchInputSchema,
  estimateQuery,
  progressQuery,
  rejectSignal,
  validateWith,
  type ApproveSignal,
  type BatchEstimate,
  type BatchInput,
  type BatchOptions,
  type BatchProgress,
  type BatchRequest,
  type BatchResult,
  type RequestError,
} from '../shared';
import {
  BatchFailedError,
  BatchNotFoundError,
  BatchRequestFailedError,
  InvalidBatchInputError,
  MaritacaBatchError,
} from './errors';

/** Options of {@link MaritacaBatchClient}. */
export interface MaritacaBatchClientOptions {
  /** A Temporal client to use; when absent one is created from `connection`/`address`. */
  client?: Client;
  /** Task queue the batch workers listen on (default `TEMPORAL_TASK_QUEUE`, then `maritaca-batch`). */
  taskQueue?: string;
}

/** Options of {@link MaritacaBatchClient.connect}; unset values come from the environment. */
export interface ConnectOptions {
  /** `host:port` of the Temporal frontend (default `TEMPORAL_ADDRESS`, then `localhost:7233`). */
  address?: string;
  /** Namespace (default `TEMPORAL_NAMESPACE`, then `default`). */
  namespace?: string;
  /** Task queue (default `TEMPORAL_TASK_QUEUE`, then `maritaca-batch`). */
  taskQueue?: string;
}

/** Per-start options that are not part of the workflow input. */
export interface StartOptions {
  /** Workflow id of the batch; default `maritaca-batch-<uuid>`. Starting an id already running fails. */
  batchId?: string;
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
  private readonly ownedConnection: Connection | undefined;

  constructor(options: MaritacaBatchClientOptions & { client: Client }, ownedConnection?: Connection) {
    this.client = options.client;
    this.taskQueue = options.taskQueue ?? process.env.TEMPORAL_TASK_QUEUE ?? DEFAULT_TASK_QUEUE;
    this.ownedConnection = ownedConnection;
  }

  /** Connects to Temporal (address, namespace and task queue from options or the environment). */
  static async connect(options: ConnectOptions = {}): Promise<MaritacaBatchClient> {
    const address = options.address ?? process.env.TEMPORAL_ADDRESS ?? 'localhost:7233';
    const namespace = options.namespace ?? process.env.TEMPORAL_NAMESPACE ?? 'default';
    let connection: Connection;
    try {
      connection = await Connection.connect({ address });
    } catch (err) {
      throw new MaritacaBatchError(`Could not connect to Temporal at ${address}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const client = new Client({ connection, namespace });
    return new MaritacaBatchClient(
      { client, ...(options.taskQueue ? { taskQueue: options.taskQueue } : {}) },
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
    const input = validateBatchInput({ requests, options });
    const batchId = start.batchId ?? `maritaca-batch-${randomUUID()}`;
    const model = input.options?.model ?? DEFAULT_MODEL;
    const handle = await this.client.workflow.start(WORKFLOW_TYPE, {
      taskQueue: this.taskQueue,
      workflowId: batchId,
      args: [input],
      staticSummary: `Maritaca batch: ${input.requests.length} request(s), model ${model}`,
    });
    return new BatchHandle(handle as WorkflowHandle);
  }

  /** A handle to an existing batch by its id (no call is made until you use it). */
  getHandle(batchId: string): BatchHandle {
    return new BatchHandle(this.client.workflow.getHandle(batchId));
  }

  /** Closes the connection if this client opened it. */
  async close(): Promise<void> {
    await this.ownedConnection?.close();
  }
}

/** Validates a whole batch input, throwing {@link InvalidBatchInputError} that names each bad field. */
export function validateBatchInput(input: unknown): BatchInput {
  const result = validateWith(batchInputSchema, input);
  if (!result.ok) throw new InvalidBatchInputError(result.issues);
  return result.value;
}

/** Drives one batch: read its estimate and progress, approve or reject it, wait for its result. */
export class BatchHandle {
  constructor(private readonly workflow: WorkflowHandle) {}

  /** The batch id (its workflow id). */
  get batchId(): string {
    return this.workflow.workflowId;
  }

  /** The cost estimate, or `null` while it is being computed. */
  async estimate(): Promise<BatchEstimate | null> {
    return this.call(() => this.workflow.query(estimateQuery));
  }

  /** Where the batch stands (status, counts, costs). */
  async progress(): Promise<BatchProgress> {
    return this.call(() => this.workflow.query(progressQuery));
  }

  /** Approves the budget (default: the estimate's total). A bad budget throws before anything is sent. */
  async approve(approval: ApproveSignal = {}): Promise<void> {
    const parsed = validateWith(approveSchema, approval);
    if (!parsed.ok) throw new InvalidBatchInputError(parsed.issues, 'approval');
    await this.call(() => this.workflow.signal(approveSignal, parsed.value));
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
          };
          throw new BatchRequestFailedError(cause.message, details, err);
        }
        throw new BatchFailedError(this.batchId, cause?.message ?? err.message, err);
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
