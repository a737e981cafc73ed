import { SimplePlugin } from '@temporalio/plugin';
import { Runtime, type Worker, type WorkerOptions, type WorkflowBundleOption } from '@temporalio/worker';
import { createActivities, type ProgressListener } from '../activities';
import { storeFromEnv, type BatchStore } from '../store';
import { missingSearchAttributes } from '../activities/observability';
import { AesGcmPayloadCodec, encryptionKeysFromEnv, type EncryptionKeys } from '../codec/aes-gcm-codec';
import {
  DEFAULT_MARITACA_BASE_URL,
  DEFAULT_REQUEST_TIMEOUT_MS,
  checkKeyLimits,
  parsePriceTable,
  type KeyLimits,
  type PriceTable,
} from '../shared';
import { loadPriceTable } from '../pricing';
import { keyLimitsFromEnv } from './config';

/** Options of {@link MaritacaBatchPlugin}. Unset values fall back to the environment. */
export interface MaritacaBatchPluginOptions {
  /** Maritaca API key; defaults to `MARITACA_API_KEY`. Stays in the worker process. */
  apiKey?: string;
  /** Maritaca API base URL; defaults to `MARITACA_BASE_URL`, then Maritaca's public API. */
  baseURL?: string;
  /** HTTP timeout of one call in milliseconds (default 120000). */
  requestTimeoutMs?: number;
  /**
   * A pre-built workflow bundle (from `bundleWorkflowCode`) instead of bundling
   * `temporal-maritaca-batch/workflows` at worker start; saves seconds per worker.
   */
  workflowBundle?: WorkflowBundleOption;
  /** Activities to use instead of the real ones (tests). */
  activities?: ReturnType<typeof createActivities>;
  /**
   * Hears every progress snapshot of batches started with `progressWebhook` or
   * `notifyProgress`, in the worker process (e.g. to forward to Slack or a dashboard).
   */
  onProgress?: ProgressListener;
  /** Where large batches page their requests and keep their outcomes (default: `MARITACA_STORE_URL`, see `storeFromEnv`). */
  store?: BatchStore;
  /**
   * Encrypt every payload with AES-256-GCM (default: from `MARITACA_ENCRYPTION_KEY`,
   * `MARITACA_ENCRYPTION_KEY_ID`, `MARITACA_ENCRYPTION_PREVIOUS_KEYS`); `false` turns it off.
   * Clients must use the same keys (`MaritacaBatchClient.connect` reads the same variables).
   */
  encryption?: EncryptionKeys | false;
  /** Check at start that the namespace has the batch search attributes and say so if not (default true). */
  checkSearchAttributes?: boolean;
  /**
   * The models and prices the activities estimate and charge with, merged over the built-in
   * table and validated like a prices file (default: `MARITACA_PRICES_FILE`, else built-in).
   * Use the same table as the clients that start batches.
   */
  prices?: PriceTable;
  /**
   * The key's per-minute limits, shared by every batch and worker on the key through its limiter
   * workflow (activity `leaseKeyCapacity`). Default: `MARITACA_RATE_LIMIT`; `false` turns it off.
   */
  keyLimits?: KeyLimits | false;
}

/** The key limits option as `createActivities` takes it; a bad value stops the worker, naming the field. */
function keyLimitsDependency(option: KeyLimits | false | undefined): { keyLimits?: KeyLimits } {
  if (option === false) return {};
  const limits = option === undefined ? keyLimitsFromEnv() : checkKeyLimits(option, 'keyLimits option');
  return limits ? { keyLimits: limits } : {};
}

function encryptionConverter(encryption: EncryptionKeys | false | undefined): {
  dataConverter?: { payloadCodecs: AesGcmPayloadCodec[] };
} {
  if (encryption === false) return {};
  const keys = encryption ?? encryptionKeysFromEnv();
  return keys ? { dataConverter: { payloadCodecs: [new AesGcmPayloadCodec(keys)] } } : {};
}

/** Path of the module that exports the workflows, resolved so it works from `src/` and `lib/`. */
export const workflowsPath: string = require.resolve('../workflows');

/**
 * Registers the `maritacaBatch` workflow and its activities on a Temporal worker.
 *
 * @throws {InvalidPriceTableError} when `prices`, or the file `MARITACA_PRICES_FILE` names, is
 *   not a valid price table: the worker does not start.
 *
 * @example
 * const worker = await Worker.create({
 *   connection,
 *   taskQueue: 'maritaca-batch',
 *   plugins: [new MaritacaBatchPlugin()], // reads MARITACA_API_KEY and MARITACA_BASE_URL
 * });
 * await worker.run();
 */
export class MaritacaBatchPlugin extends SimplePlugin {
  private readonly hasApiKey: boolean;

  constructor(options: MaritacaBatchPluginOptions = {}) {
    const apiKey = options.apiKey ?? process.env.MARITACA_API_KEY ?? '';
    const baseURL = options.baseURL ?? process.env.MARITACA_BASE_URL ?? DEFAULT_MARITACA_BASE_URL;
    super({
      name: 'temporal-maritaca-batch',
      activities:
        options.activities ??
        createActivities({
          apiKey,
          baseURL,
          requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
          ...(options.onProgress ? { onProgress: options.onProgress } : {}),
          // Loaded here, so a bad prices file stops the worker before it polls, naming the field.
          prices: options.prices ? parsePriceTable(options.prices, 'prices option') : loadPriceTable(),
          ...keyLimitsDependency(options.keyLimits),
          // Outcomes and uploads are sealed with the same keys as the payloads (or left plain likewise).
          store:
            options.store ??
            storeFromEnv(
              process.env,
              options.encryption === undefined ? {} : { encryption: options.encryption },
            ),
        }),
      ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath }),
      ...encryptionConverter(options.encryption),
    });
    this.hasApiKey = apiKey !== '' || options.activities !== undefined;
    this.checkSearchAttributes = options.checkSearchAttributes ?? true;
  }

  private readonly checkSearchAttributes: boolean;

  /** Says at start, once, when the namespace lacks the batch search attributes; runs the worker either way. */
  override async runWorker(worker: Worker, next: (w: Worker) => Promise<void>): Promise<void> {
    const connection = worker.connection;
    if (this.checkSearchAttributes && connection) {
      const namespace = worker.options.namespace;
      await missingSearchAttributes(
        async () => {
          const response = await connection.operatorService.listSearchAttributes({ namespace });
          return { ...response.customAttributes, ...response.systemAttributes };
        },
        namespace,
        (message) =>
          Runtime.instance().logger.warn(message, {
            sdkComponent: 'worker',
            taskQueue: worker.options.taskQueue,
          }),
      );
    }
    return super.runWorker(worker, next);
  }

  /** Adds the workflows and activities; throttles heartbeats to 1 s so cancellation reaches calls fast. */
  override configureWorker(options: WorkerOptions): WorkerOptions {
    if (!this.hasApiKey) {
      throw new Error(
        'MaritacaBatchPlugin needs a Maritaca API key: pass { apiKey } or set MARITACA_API_KEY in the worker environment',
      );
    }
    const configured = super.configureWorker(options);
    return {
      ...configured,
      maxHeartbeatThrottleInterval: configured.maxHeartbeatThrottleInterval ?? '1 second',
      defaultHeartbeatThrottleInterval: configured.defaultHeartbeatThrottleInterval ?? '1 second',
    };
  }
}
