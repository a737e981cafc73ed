import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { BUILT_IN_PRICES, InvalidPriceTableError, parsePriceTable, type PriceTable } from '../shared';

/** Environment variable naming a JSON prices file merged over the built-in table. */
export const PRICES_FILE_ENV = 'MARITACA_PRICES_FILE';

/** Options of {@link loadPriceTable}. */
export interface LoadPriceTableOptions {
  /** A JSON prices file; wins over `MARITACA_PRICES_FILE`. */
  file?: string;
  /** Where `MARITACA_PRICES_FILE` is read from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
}

interface CachedTable {
  readonly mtimeMs: number;
  readonly size: number;
  readonly table: PriceTable;
}

// Clients validate every batch against the table, so re-reading and re-validating the file per
// call would be wasted work; its modification time and size still let an edited file take effect.
const cache = new Map<string, CachedTable>();

/** An error's message; `instanceof Error` fails for errors made in another realm (a VM context, jest). */
function errorMessage(err: unknown): string {
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : String(err);
}

/** `line L, column C` of a character offset, both 1-based as editors count them. */
function lineAndColumn(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - (before.lastIndexOf('\n') + 1) + 1;
  return `line ${line}, column ${column}`;
}

/**
 * Parses JSON text, naming the line and column of a syntax error: V8 reports only a character
 * offset ("at position 42"), or nothing at all when the text ends early.
 */
function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const message = errorMessage(err);
    const position = /at position (\d+)/.exec(message);
    const offset = position
      ? Number(position[1])
      : /end of JSON input/.test(message)
        ? text.length
        : undefined;
    const reason = message.replace(/ in JSON at position \d+( \(line \d+ column \d+\))?/, '');
    const where = offset === undefined ? '' : ` at ${lineAndColumn(text, offset)}`;
    throw new InvalidPriceTableError(source, [{ path: '', message: `not valid JSON${where}: ${reason}` }]);
  }
}

/**
 * The price table to use: the JSON file `file` names, else the one `MARITACA_PRICES_FILE` names,
 * else the built-in table. A file's models are merged over the built-in ones (see
 * `parsePriceTable`): it may change one model's price or add a model, and its `checkedOn`
 * becomes the table's date. Empty values count as unset.
 *
 * @throws {InvalidPriceTableError} naming the file (and the variable, when it came from there)
 *   when it cannot be read, is not JSON (with the line and column) or has a bad field.
 * @example
 * // prices.json: {"checkedOn":"2027-01-15","currency":"BRL","models":{"sabia-4":{"input":4,"output":16,"contextWindow":131072,"maxOutputTokens":32768}}}
 * const prices = loadPriceTable({ file: 'prices.json' });
 * const batches = await MaritacaBatchClient.connect({ prices });
 */
export function loadPriceTable(options: LoadPriceTableOptions = {}): PriceTable {
  const explicit = options.file?.trim();
  const fromEnv = (options.env ?? process.env)[PRICES_FILE_ENV]?.trim();
  const file = explicit || fromEnv;
  if (!file) return BUILT_IN_PRICES;
  // Saying where the path came from spares an operator hunting for why a worker read that file.
  const source = explicit ? file : `${file} (${PRICES_FILE_ENV})`;
  const absolute = path.resolve(file);
  let stats: { mtimeMs: number; size: number };
  let text: string;
  try {
    stats = statSync(absolute);
    const cached = cache.get(absolute);
    if (cached && cached.mtimeMs === stats.mtimeMs && cached.size === stats.size) return cached.table;
    text = readFileSync(absolute, 'utf8');
  } catch (err) {
    const reason = errorMessage(err);
    throw new InvalidPriceTableError(source, [
      { path: '', message: `cannot read the prices file: ${reason}` },
    ]);
  }
  // A BOM is what some Windows editors put first; JSON.parse would refuse it.
  const table = parsePriceTable(parseJson(text.replace(/^\uFEFF/, ''), source), source);
  cache.set(absolute, { mtimeMs: stats.mtimeMs, size: stats.size, table });
  return table;
}
