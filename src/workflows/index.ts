/**
 * Sandbox-safe entry point: the workflows a worker registers, plus the shared definitions
 * (signals, queries, schemas, types) workflow code and other SDK users may import.
 */
export { maritacaBatch } from './batch';
export * from '../shared';
export { maritacaKeyLimiter } from './key-limiter';
