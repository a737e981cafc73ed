import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { packageRoot } from './package-root';

const execFileAsync = promisify(execFile);
const venvBin = process.platform === 'win32' ? 'Scripts' : 'bin';

/** The package-local Python virtual environment (git-ignored `.tools/`) that holds test servers. */
export function toolsVenv(): string {
  return path.join(packageRoot(), '.tools');
}

/** Whether `file` exists and may be executed. */
export async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Where a command of this name sits in the tools venv. */
export function toolsVenvCommand(name: string): string {
  return path.join(toolsVenv(), venvBin, process.platform === 'win32' ? `${name}.exe` : name);
}

/** How {@link findTool} looks for a command. */
export interface ToolLookup {
  /** The command's file name without extension, e.g. `temporal`. */
  command: string;
  /** Environment variable that names the executable outright; when set it must be executable. */
  envVar: string;
  /** Look in the tools venv before `PATH` (for pinned versions) or after it. */
  venvFirst: boolean;
}

/** Finds a command: the variable, then the tools venv and `PATH` in the order asked; undefined when absent. */
export async function findTool(
  lookup: ToolLookup,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | undefined> {
  const explicit = env[lookup.envVar]?.trim();
  if (explicit) {
    if (await isExecutable(explicit)) return explicit;
    throw new Error(`${lookup.envVar} is set to "${explicit}", which is not an executable file`);
  }
  const local = toolsVenvCommand(lookup.command);
  const onPath = async (): Promise<string | undefined> => {
    const name = process.platform === 'win32' ? `${lookup.command}.exe` : lookup.command;
    for (const dir of (env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
      const candidate = path.join(dir, name);
      if (await isExecutable(candidate)) return candidate;
    }
    return undefined;
  };
  if (lookup.venvFirst && (await isExecutable(local))) return local;
  const found = await onPath();
  if (found) return found;
  return !lookup.venvFirst && (await isExecutable(local)) ? local : undefined;
}

/**
 * Installs a PyPI requirement into the tools venv (made on first use, with `PYTHON` or
 * `python3`) and returns the path of the command it provides. Needs only Python with `venv`.
 */
export async function installIntoToolsVenv(
  requirement: string,
  lookup: ToolLookup,
  log: (line: string) => void,
): Promise<string> {
  const venv = toolsVenv();
  const python = process.env.PYTHON ?? (process.platform === 'win32' ? 'python' : 'python3');
  log(`${requirement} is not in ${venv}; installing it with pip ...`);
  try {
    if (!existsSync(path.join(venv, venvBin))) await execFileAsync(python, ['-m', 'venv', venv]);
    await execFileAsync(
      path.join(venv, venvBin, 'pip'),
      ['install', '--disable-pip-version-check', '--quiet', requirement],
      { maxBuffer: 16 * 1024 * 1024 },
    );
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(
      `Could not install ${requirement} with pip (${(err as Error).message.split('\n')[0]}). ` +
        `Install it yourself and set ${lookup.envVar}, or put "${lookup.command}" on PATH.\n${stderr}`,
    );
  }
  const installed = toolsVenvCommand(lookup.command);
  if (!(await isExecutable(installed)))
    throw new Error(`pip installed ${requirement} but ${installed} is missing`);
  log(`${lookup.command} installed at ${installed}`);
  return installed;
}
