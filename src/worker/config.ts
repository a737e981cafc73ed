import {
  DEFAULT_MARITACA_BASE_URL,
  DEFAULT_TASK_QUEUE,
  RATE_LIMIT_ENV,
  parseKeyLimits,
  type KeyLimits,
} from '../shared';

/** Worker and client settings read from the environment. */
export interface EnvironmentConfig {
  /** `TEMPORAL_ADDRESS`, default `localhost:7233`. */
  address: string;
  /** `TEMPORAL_NAMESPACE`, default `default`. */
  namespace: string;
  /** `TEMPORAL_TASK_QUEUE`, default `maritaca-batch`. */
  taskQueue: string;
  /** `MARITACA_API_KEY` (worker only). */
  apiKey: string | undefined;
  /** `MARITACA_BASE_URL`, default Maritaca's public API. */
  baseURL: string;
}

/** Reads {@link EnvironmentConfig} from `env` (default `process.env`), empty strings counting as unset. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): EnvironmentConfig {
  const read = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value ? value : undefined;
  };
  return {
    address: read('TEMPORAL_ADDRESS') ?? 'localhost:7233',
    namespace: read('TEMPORAL_NAMESPACE') ?? 'default',
    taskQueue: read('TEMPORAL_TASK_QUEUE') ?? DEFAULT_TASK_QUEUE,
    apiKey: read('MARITACA_API_KEY'),
    baseURL: read('MARITACA_BASE_URL') ?? DEFAULT_MARITACA_BASE_URL,
  };
}

/**
 * The worker key's per-minute limits from `MARITACA_RATE_LIMIT` (JSON such as
 * `{"rpm":1000,"inputTpm":2000000,"outputTpm":200000}`), or `undefined` when unset or blank.
 *
 * @throws {InvalidKeyLimitsError} naming the variable and the field at fault, so a worker with a
 *   mistyped limit does not start.
 */
export function keyLimitsFromEnv(env: NodeJS.ProcessEnv = process.env): KeyLimits | undefined {
  const text = env[RATE_LIMIT_ENV]?.trim();
  return text ? parseKeyLimits(text, RATE_LIMIT_ENV) : undefined;
}
