import { IllegalStateError } from '@temporalio/common';
import { Runtime, type RuntimeOptions } from '@temporalio/worker';

/**
 * Installs the Temporal Runtime with `options` unless this process already has one (an embedding
 * application's, or one a worker or connection created earlier): that one then stays, with its own
 * logger and signal handling. Returns whether `options` took effect.
 */
export function installRuntime(options: RuntimeOptions): boolean {
  try {
    Runtime.install(options);
    return true;
  } catch (err) {
    if (err instanceof IllegalStateError) return false;
    throw err;
  }
}
