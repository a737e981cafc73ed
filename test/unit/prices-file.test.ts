/**
 * Prices that can change without a release: the table's date, a JSON prices file or option
 * merged over the built-in table, every bad field named, unknown models refused with the list.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  BUILT_IN_PRICES,
  InvalidBatchFileError,
  InvalidBatchInputError,
  InvalidPriceTableError,
  KNOWN_MODELS,
  MODEL_PRICES,
  MaritacaBatchPlugin,
  UnknownModelError,
  knownModelsOf,
  loadPriceTable,
  modelPriceOf,
  parseBatchJsonl,
  parsePriceTable,
  priceOf,
  runWorker,
  validateBatchInput,
  type PriceTable,
} from '../../src';
import { main } from '../../src/cli';

const root = path.join(__dirname, '..', '..');
const K = 1024;
const sabia5 = { input: 8, output: 32, contextWindow: 256 * K, maxOutputTokens: 64 * K };
const user = (content: string) => ({ role: 'user' as const, content });

/** A prices file's content: checked today, in BRL, with `models`. */
function pricesJson(models: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return { checkedOn: '2027-01-15', currency: 'BRL', models, ...extra };
}

/** The error `parsePriceTable` throws for `json`, read from `prices.json`. */
function refusal(json: unknown): InvalidPriceTableError {
  try {
    parsePriceTable(json, 'prices.json');
  } catch (err) {
    if (err instanceof InvalidPriceTableError) return err;
    throw err;
  }
  throw new Error('expected the table to be refused');
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'prices-file-test-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes `content` (JSON unless a string) to a fresh file in the test folder and returns its path. */
let files = 0;
function file(content: unknown, name = `prices-${++files}.json`): string {
  const target = path.join(dir, name);
  writeFileSync(target, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return target;
}

describe('the built-in table', () => {
  test('carries the day its figures were checked and wraps MODEL_PRICES', () => {
    expect(BUILT_IN_PRICES.checkedOn).toBe('2026-11-29');
    expect(BUILT_IN_PRICES.currency).toBe('BRL');
    expect(BUILT_IN_PRICES.models).toBe(MODEL_PRICES);
    expect(knownModelsOf(BUILT_IN_PRICES)).toEqual(KNOWN_MODELS);
  });

  test('priceOf keeps pricing with it by default and takes another table', () => {
    expect(priceOf('sabia-4', { promptTokens: 1_000_000, completionTokens: 1_000_000 })).toBe(25);
    const table = parsePriceTable(pricesJson({ 'sabia-4': { ...sabia5, input: 4, output: 16 } }), 'x');
    expect(priceOf('sabia-4', { promptTokens: 1_000_000, completionTokens: 1_000_000 }, table)).toBe(20);
  });

  test('an unknown model is refused with the list of known ones', () => {
    const known = KNOWN_MODELS.join(', ');
    expect(() => modelPriceOf(BUILT_IN_PRICES, 'gpt-4o')).toThrow(
      new UnknownModelError('gpt-4o', KNOWN_MODELS),
    );
    expect(() => modelPriceOf(BUILT_IN_PRICES, 'gpt-4o')).toThrow(
      `unknown model "gpt-4o"; known models: ${known}`,
    );
    // Names that happen to be Object.prototype's properties are not models either.
    expect(() => modelPriceOf(BUILT_IN_PRICES, 'constructor')).toThrow(UnknownModelError);
    expect(() => priceOf('toString', { promptTokens: 1, completionTokens: 1 })).toThrow(UnknownModelError);
  });
});

describe('parsePriceTable: merging over the built-in table', () => {
  test("a file may change one model's price and add a model; its date becomes the table's", () => {
    const table = parsePriceTable(
      pricesJson({
        'sabia-4': { input: 4, output: 16, contextWindow: 128 * K, maxOutputTokens: 32 * K },
        'sabia-5': sabia5,
      }),
      'prices.json',
    );
    expect(table.checkedOn).toBe('2027-01-15');
    expect(table.currency).toBe('BRL');
    expect(modelPriceOf(table, 'sabia-4')).toEqual({
      input: 4,
      output: 16,
      contextWindow: 128 * K,
      maxOutputTokens: 32 * K,
    });
    expect(modelPriceOf(table, 'sabia-5')).toEqual(sabia5);
    for (const model of KNOWN_MODELS.filter((m) => m !== 'sabia-4')) {
      expect(modelPriceOf(table, model)).toEqual(MODEL_PRICES[model]);
    }
    // Built-in models keep their place in the list; added ones follow.
    expect(knownModelsOf(table)).toEqual([...KNOWN_MODELS, 'sabia-5']);
    // The built-in table itself is untouched.
    expect(MODEL_PRICES['sabia-4']!.input).toBe(5);
    expect(Object.hasOwn(MODEL_PRICES, 'sabia-5')).toBe(false);
  });

  test('a model the file names is replaced whole: a cached price it leaves out is gone', () => {
    const table = parsePriceTable(pricesJson({ 'sabia-4': { ...sabia5 } }), 'prices.json');
    expect(modelPriceOf(table, 'sabia-4').cachedInput).toBeUndefined();
    const cached = parsePriceTable(pricesJson({ 'sabia-4': { ...sabia5, cachedInput: 2 } }), 'prices.json');
    expect(modelPriceOf(cached, 'sabia-4').cachedInput).toBe(2);
  });

  test('a file with no models only re-dates the built-in figures; a table given back is the same table', () => {
    const redated = parsePriceTable(pricesJson({}), 'prices.json');
    expect(redated.models).toEqual(MODEL_PRICES);
    expect(redated.checkedOn).toBe('2027-01-15');
    expect(parsePriceTable(BUILT_IN_PRICES, 'prices option')).toEqual(BUILT_IN_PRICES);
  });

  test('merges over another base when asked', () => {
    const base = parsePriceTable(pricesJson({ 'sabia-5': sabia5 }), 'a.json');
    const table = parsePriceTable(
      pricesJson({ 'sabia-6': sabia5 }, { checkedOn: '2027-02-01' }),
      'b.json',
      base,
    );
    expect(knownModelsOf(table).slice(-2)).toEqual(['sabia-5', 'sabia-6']);
    expect(table.checkedOn).toBe('2027-02-01');
  });
});

describe('parsePriceTable: every bad field is named with its source', () => {
  const price = { input: 5, output: 20, contextWindow: 128 * K, maxOutputTokens: 32 * K };

  test.each<[string, unknown, string]>([
    [
      'a negative price',
      pricesJson({ 'sabia-4': { ...price, output: -1 } }),
      'models["sabia-4"].output: expected a number ≥ 0',
    ],
    [
      'a price as a string',
      pricesJson({ 'sabia-4': { ...price, output: '20' } }),
      'models["sabia-4"].output: expected a number ≥ 0',
    ],
    [
      'a negative cached price',
      pricesJson({ 'sabia-4': { ...price, cachedInput: -0.5 } }),
      'models["sabia-4"].cachedInput: expected a number ≥ 0',
    ],
    [
      'a missing price',
      pricesJson({ 'sabia-5': { output: 20, contextWindow: 1000, maxOutputTokens: 100 } }),
      'models["sabia-5"].input: missing: expected a number ≥ 0',
    ],
    [
      'a fractional context window',
      pricesJson({ 'sabia-4': { ...price, contextWindow: 1.5 } }),
      'models["sabia-4"].contextWindow: expected a whole number > 0',
    ],
    [
      'a zero max output',
      pricesJson({ 'sabia-4': { ...price, maxOutputTokens: 0 } }),
      'models["sabia-4"].maxOutputTokens: expected a whole number > 0',
    ],
    [
      'a missing max output',
      pricesJson({ 'sabia-4': { input: 5, output: 20, contextWindow: 1000 } }),
      'models["sabia-4"].maxOutputTokens: missing: expected a whole number > 0',
    ],
    [
      'an answer longer than the window',
      pricesJson({ 'sabia-4': { ...price, contextWindow: 1000, maxOutputTokens: 2000 } }),
      'models["sabia-4"].maxOutputTokens: expected at most contextWindow (1000)',
    ],
    [
      'a misspelt field',
      pricesJson({ 'sabia-4': { ...price, cachedinput: 1 } }),
      'models["sabia-4"].cachedinput: unknown field (expected input, output, cachedInput, contextWindow, maxOutputTokens)',
    ],
    [
      'a model that is not an object',
      pricesJson({ 'sabia-4': 5 }),
      'models["sabia-4"]: expected an object with input, output, contextWindow and maxOutputTokens',
    ],
    [
      'a model name with a space',
      pricesJson({ 'sabia 4': price }),
      'models["sabia 4"]: expected a model name',
    ],
    [
      'a model named __proto__',
      JSON.parse(
        `{"checkedOn":"2027-01-15","currency":"BRL","models":{"__proto__":${JSON.stringify(price)}}}`,
      ),
      'models["__proto__"]: expected a model name',
    ],
    [
      'no checkedOn',
      { currency: 'BRL', models: {} },
      'checkedOn: missing: expected the day the prices were checked, as YYYY-MM-DD',
    ],
    [
      'a checkedOn that is not a day',
      pricesJson({}, { checkedOn: '2026-02-30' }),
      'checkedOn: expected a real date as YYYY-MM-DD',
    ],
    [
      'a checkedOn in another format',
      pricesJson({}, { checkedOn: '29/11/2026' }),
      'checkedOn: expected a real date as YYYY-MM-DD',
    ],
    [
      'a checkedOn on 29 February of a century year',
      pricesJson({}, { checkedOn: '2100-02-29' }),
      'checkedOn: expected a real date as YYYY-MM-DD',
    ],
    [
      'another currency',
      pricesJson({}, { currency: 'USD' }),
      'currency: expected "BRL" (every cost in this package is in BRL)',
    ],
    ['no currency', { checkedOn: '2027-01-15', models: {} }, 'currency: missing: expected "BRL"'],
    [
      'no models',
      { checkedOn: '2027-01-15', currency: 'BRL' },
      'models: missing: expected an object of model name to price',
    ],
    [
      'models as a list',
      pricesJson({}, { models: [price] }),
      'models: expected an object of model name to price',
    ],
    [
      'an unknown top-level field',
      pricesJson({}, { note: 'x' }),
      'note: unknown field (expected checkedOn, currency, models)',
    ],
    ['a list instead of a table', [price], 'expected an object with checkedOn, currency and models'],
  ])('%s', (_name, json, expected) => {
    const error = refusal(json);
    expect(error.source).toBe('prices.json');
    expect(error.message.startsWith(`prices.json: ${expected}`)).toBe(true);
  });

  test('the exact message of one bad field', () => {
    expect(refusal(pricesJson({ 'sabia-4': { ...price, output: -1 } })).message).toBe(
      'prices.json: models["sabia-4"].output: expected a number ≥ 0',
    );
  });

  test('names every problem at once', () => {
    const error = refusal({
      checkedOn: '2027-13-01',
      currency: 'BRL',
      models: { 'sabia-4': { ...price, input: -1, output: null }, 'bad name': price },
    });
    expect(error.issues.map((issue) => issue.path)).toEqual([
      'checkedOn',
      'models["sabia-4"].input',
      'models["sabia-4"].output',
      'models["bad name"]',
    ]);
    expect(error.message.split('; ')).toHaveLength(4);
  });

  test('a leap day is a real date', () => {
    expect(parsePriceTable(pricesJson({}, { checkedOn: '2028-02-29' }), 'x').checkedOn).toBe('2028-02-29');
    expect(parsePriceTable(pricesJson({}, { checkedOn: '2000-02-29' }), 'x').checkedOn).toBe('2000-02-29');
  });
});

describe('loadPriceTable', () => {
  test('without a file or MARITACA_PRICES_FILE it is the built-in table', () => {
    expect(loadPriceTable({ env: {} })).toBe(BUILT_IN_PRICES);
    expect(loadPriceTable({ env: { MARITACA_PRICES_FILE: '  ' } })).toBe(BUILT_IN_PRICES);
    expect(loadPriceTable({ file: '', env: {} })).toBe(BUILT_IN_PRICES);
  });

  test('reads the file MARITACA_PRICES_FILE names, merged over the built-in table', () => {
    const prices = file(pricesJson({ 'sabia-5': sabia5 }));
    const table = loadPriceTable({ env: { MARITACA_PRICES_FILE: prices } });
    expect(table.checkedOn).toBe('2027-01-15');
    expect(knownModelsOf(table)).toEqual([...KNOWN_MODELS, 'sabia-5']);
  });

  test('an explicit file wins over MARITACA_PRICES_FILE', () => {
    const fromEnv = file(pricesJson({ 'sabia-5': sabia5 }));
    const explicit = file(pricesJson({ 'sabia-6': sabia5 }, { checkedOn: '2027-03-01' }));
    const table = loadPriceTable({ file: explicit, env: { MARITACA_PRICES_FILE: fromEnv } });
    expect(table.checkedOn).toBe('2027-03-01');
    expect(knownModelsOf(table)).toContain('sabia-6');
    expect(knownModelsOf(table)).not.toContain('sabia-5');
  });

  test('a missing file names the file and, when it came from there, the variable', () => {
    const missing = path.join(dir, 'no-such-prices.json');
    expect(() => loadPriceTable({ env: { MARITACA_PRICES_FILE: missing } })).toThrow(
      new RegExp(`^${escape(missing)} \\(MARITACA_PRICES_FILE\\): cannot read the prices file: ENOENT`),
    );
    let error: unknown;
    try {
      loadPriceTable({ file: missing, env: {} });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidPriceTableError);
    expect((error as Error).message).toMatch(new RegExp(`^${escape(missing)}: cannot read the prices file`));
    expect((error as Error).message).not.toContain('MARITACA_PRICES_FILE');
  });

  test('a JSON syntax error names the line and column', () => {
    const broken = file('{\n  "checkedOn": "2027-01-15",\n  "currency": "BRL"\n  "models": {}\n}\n');
    expect(() => loadPriceTable({ file: broken })).toThrow(
      new RegExp(`^${escape(broken)}: not valid JSON at line 4, column 3: `),
    );
    const truncated = file('{\n  "checkedOn": "2027-01-15",\n  "models": {');
    expect(() => loadPriceTable({ file: truncated })).toThrow(
      new RegExp(`^${escape(truncated)}: not valid JSON at line 3, column 14: `),
    );
  });

  test('a bad field names the file and the exact field', () => {
    const bad = file(
      pricesJson({ 'sabia-4': { input: 5, output: -20, contextWindow: 1000, maxOutputTokens: 100 } }),
    );
    expect(() => loadPriceTable({ env: { MARITACA_PRICES_FILE: bad } })).toThrow(
      `${bad} (MARITACA_PRICES_FILE): models["sabia-4"].output: expected a number ≥ 0`,
    );
  });

  test('accepts a byte order mark', () => {
    const withBom = file('\uFEFF' + JSON.stringify(pricesJson({ 'sabia-5': sabia5 })));
    expect(knownModelsOf(loadPriceTable({ file: withBom }))).toContain('sabia-5');
  });

  test('reads a file once, and again when it changes', () => {
    const prices = file(pricesJson({ 'sabia-5': sabia5 }));
    const first = loadPriceTable({ file: prices });
    expect(loadPriceTable({ file: prices })).toBe(first);
    writeFileSync(prices, JSON.stringify(pricesJson({ 'sabia-5': { ...sabia5, input: 80 } })));
    expect(modelPriceOf(loadPriceTable({ file: prices }), 'sabia-5').input).toBe(80);
  });
});

describe('unknown models are refused against the table in use', () => {
  const added = parsePriceTable(pricesJson({ 'sabia-5': sabia5 }), 'prices.json');
  const listWith = (table: PriceTable) => `must be one of ${knownModelsOf(table).join(', ')}`;

  test('validateBatchInput names the field and lists the known models', () => {
    let error: unknown;
    try {
      validateBatchInput(
        {
          requests: [{ messages: [user('a')] }, { messages: [user('b')], model: 'sabia-9' }],
          options: { model: 'gpt-4o' },
        },
        { prices: BUILT_IN_PRICES },
      );
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidBatchInputError);
    expect((error as InvalidBatchInputError).issues).toEqual([
      { path: 'options.model', message: listWith(BUILT_IN_PRICES) },
      { path: 'requests[1].model', message: listWith(BUILT_IN_PRICES) },
    ]);
  });

  test('a model a prices file adds is accepted, and the list names it', () => {
    expect(() =>
      validateBatchInput(
        { requests: [{ messages: [user('a')], model: 'sabia-5' }] },
        { prices: BUILT_IN_PRICES },
      ),
    ).toThrow('requests[0].model');
    expect(
      validateBatchInput({ requests: [{ messages: [user('a')], model: 'sabia-5' }] }, { prices: added })
        .requests,
    ).toHaveLength(1);
    expect(() =>
      validateBatchInput(
        { requests: [{ messages: [user('a')] }], options: { model: 'sabia-6' } },
        { prices: added },
      ),
    ).toThrow(`options.model: ${listWith(added)}`);
  });

  test('the context window comes from the table', () => {
    const tiny = parsePriceTable(
      pricesJson({ 'sabia-5': { ...sabia5, contextWindow: 500, maxOutputTokens: 100 } }),
      'x',
    );
    const input = {
      requests: [{ messages: [user('palavra '.repeat(450))], model: 'sabia-5', maxTokens: 100 }],
    };
    expect(() => validateBatchInput(input, { prices: added })).not.toThrow();
    expect(() => validateBatchInput(input, { prices: tiny })).toThrow(
      /requests\[0\]\.messages: about \d+ prompt tokens plus max_tokens 100 exceed sabia-5's context window of 500 tokens/,
    );
  });

  test('without a table, validateBatchInput reads MARITACA_PRICES_FILE', () => {
    const prices = file(pricesJson({ 'sabia-5': sabia5 }));
    const before = process.env.MARITACA_PRICES_FILE;
    process.env.MARITACA_PRICES_FILE = prices;
    try {
      expect(() =>
        validateBatchInput({ requests: [{ messages: [user('a')], model: 'sabia-5' }] }),
      ).not.toThrow();
    } finally {
      if (before === undefined) delete process.env.MARITACA_PRICES_FILE;
      else process.env.MARITACA_PRICES_FILE = before;
    }
    expect(() => validateBatchInput({ requests: [{ messages: [user('a')], model: 'sabia-5' }] })).toThrow(
      InvalidBatchInputError,
    );
  });

  test('a JSONL file names the line and the field in its own format', () => {
    const text = [
      JSON.stringify({
        custom_id: 'a',
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'gpt-4o', messages: [user('a')] },
      }),
      JSON.stringify({ id: 'b', model: 'sabia-5', messages: [user('b')] }),
      '',
      JSON.stringify({ id: 'c', model: 'sabia-6', messages: [user('c')], temperature: 9 }),
    ].join('\n');
    let error: unknown;
    try {
      parseBatchJsonl(text, { knownModels: knownModelsOf(added) });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidBatchFileError);
    expect((error as InvalidBatchFileError).problems).toEqual([
      { line: 1, field: 'body.model', message: listWith(added) },
      { line: 4, field: 'model', message: listWith(added) },
      { line: 4, field: 'temperature', message: expect.any(String) },
    ]);
    // The workers page a file the client already checked, so without a list names are not judged.
    expect(parseBatchJsonl(text.split('\n').slice(0, 2).join('\n')).requests.map((r) => r.model)).toEqual([
      'gpt-4o',
      'sabia-5',
    ]);
  });
});

describe('the CLI takes the table from --prices-file or MARITACA_PRICES_FILE', () => {
  let stderr: string;
  beforeEach(() => {
    stderr = '';
    jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stderr += String(chunk);
      return true;
    });
    jest.spyOn(console, 'log').mockImplementation(() => undefined);
  });
  afterEach(() => jest.restoreAllMocks());

  const batchFile = () =>
    file(JSON.stringify({ id: 'q', messages: [user('Olá')] }) + '\n', `batch-${++files}.jsonl`);

  test('--model is refused with the list of the table in use, wherever --prices-file stands', async () => {
    const prices = file(pricesJson({ 'sabia-5': sabia5 }));
    const known = [...KNOWN_MODELS, 'sabia-5'].join(', ');
    for (const argv of [
      ['--prices-file', prices, 'estimate', batchFile(), '--model', 'sabia-6'],
      ['estimate', batchFile(), '--model', 'sabia-6', '--prices-file', prices],
    ]) {
      stderr = '';
      expect(await main(['node', 'maritaca-batch', ...argv])).toBe(2);
      expect(stderr).toContain("option '--model <model>' argument 'sabia-6' is invalid");
      expect(stderr).toContain(`unknown model "sabia-6"; known models: ${known}`);
    }
  });

  test('a model the prices file adds passes --model and the file check', async () => {
    const prices = file(pricesJson({ 'sabia-5': sabia5 }));
    const lines = file(
      JSON.stringify({ id: 'q', model: 'sabia-5', messages: [user('Olá')] }) + '\n',
      'model-line.jsonl',
    );
    await main([
      'node',
      'maritaca-batch',
      '--prices-file',
      prices,
      'estimate',
      lines,
      '--model',
      'sabia-5',
      '--json',
    ]);
    expect(stderr).not.toMatch(/--model|must be one of|line 1/);
    stderr = '';
    expect(await main(['node', 'maritaca-batch', 'estimate', lines])).toBe(2);
    expect(stderr).toContain(`line 1: model: must be one of ${KNOWN_MODELS.join(', ')}`);
  });

  test('a bad prices file exits 2 naming the file and the field', async () => {
    const bad = file(pricesJson({ 'sabia-4': { input: 5, output: 20, contextWindow: 1000 } }));
    expect(await main(['node', 'maritaca-batch', '--prices-file', bad, 'estimate', batchFile()])).toBe(2);
    const expected = `maritaca-batch: ${bad}: models["sabia-4"].maxOutputTokens: missing: expected a whole number > 0\n`;
    expect(stderr).toBe(expected);
    // Commands that connect, and --model, refuse it the same way, before reaching for Temporal.
    for (const argv of [
      ['status', 'some-batch', '--address', '127.0.0.1:1'],
      ['submit', batchFile(), '--model', 'sabia-4'],
      ['worker'],
    ]) {
      stderr = '';
      expect(await main(['node', 'maritaca-batch', '--prices-file', bad, ...argv])).toBe(2);
      expect(stderr).toBe(expected);
    }
  });
});

describe('a worker refuses to start with a bad prices file', () => {
  const bad = () =>
    file(pricesJson({ 'sabia-4': { input: 5, output: 'twenty', contextWindow: 1000, maxOutputTokens: 10 } }));

  test('the plugin, from MARITACA_PRICES_FILE', () => {
    const prices = bad();
    const before = process.env.MARITACA_PRICES_FILE;
    process.env.MARITACA_PRICES_FILE = prices;
    try {
      expect(() => new MaritacaBatchPlugin({ apiKey: 'k' })).toThrow(
        `${prices} (MARITACA_PRICES_FILE): models["sabia-4"].output: expected a number ≥ 0`,
      );
    } finally {
      if (before === undefined) delete process.env.MARITACA_PRICES_FILE;
      else process.env.MARITACA_PRICES_FILE = before;
    }
    expect(() => new MaritacaBatchPlugin({ apiKey: 'k' })).not.toThrow();
  });

  test('the plugin, from its option', () => {
    const invalid = { ...BUILT_IN_PRICES, checkedOn: 'yesterday' };
    expect(() => new MaritacaBatchPlugin({ apiKey: 'k', prices: invalid })).toThrow(
      'prices option: checkedOn: expected a real date as YYYY-MM-DD',
    );
  });

  test('runWorker, before it connects to anything', async () => {
    const prices = bad();
    const before = process.env.MARITACA_PRICES_FILE;
    process.env.MARITACA_PRICES_FILE = prices;
    try {
      // An address nothing listens on: had the worker tried to connect, the error would say so.
      await expect(runWorker({ apiKey: 'k', address: '127.0.0.1:1', handleSignals: false })).rejects.toThrow(
        `${prices} (MARITACA_PRICES_FILE): models["sabia-4"].output: expected a number ≥ 0`,
      );
    } finally {
      if (before === undefined) delete process.env.MARITACA_PRICES_FILE;
      else process.env.MARITACA_PRICES_FILE = before;
    }
  });
});

describe('lint keeps src/pricing a layer below the client, the activities and the worker', () => {
  function lint(code: string, filePath: string): string[] {
    const run = spawnSync(
      process.execPath,
      [
        path.join(root, 'node_modules', 'eslint', 'bin', 'eslint.js'),
        '--stdin',
        '--stdin-filename',
        filePath,
        '--format',
        'json',
      ],
      { cwd: root, input: code, encoding: 'utf8' },
    );
    const [result] = JSON.parse(run.stdout) as { messages: { ruleId: string | null }[] }[];
    return result!.messages
      .map((m) => m.ruleId ?? '')
      .filter((rule) => rule.endsWith('no-restricted-imports'));
  }

  test('src/pricing may import only shared code and Node built-ins', () => {
    const allowed = [
      "import { readFileSync } from 'node:fs';",
      "import path from 'path';",
      "import { readFile } from 'fs/promises';",
      "import { parsePriceTable } from '../shared';",
      "import { BUILT_IN_PRICES } from '../shared/prices';",
      "import { x } from './cache';",
      'export const all = [readFileSync, path, readFile, parsePriceTable, BUILT_IN_PRICES, x];',
      '',
    ].join('\n');
    expect(lint(allowed, 'src/pricing/probe.ts')).toEqual([]);
    const refused = [
      "import { storeFromEnv } from '../store';",
      "import { MaritacaBatchClient } from '../client';",
      "import { createActivities } from '../activities';",
      "import { z } from 'zod';",
      "import { Client } from '@temporalio/client';",
      "import { y } from '../shared-extra';",
      'export const all = [storeFromEnv, MaritacaBatchClient, createActivities, z, Client, y];',
      '',
    ].join('\n');
    expect(lint(refused, 'src/pricing/probe.ts')).toHaveLength(6);
  });

  test('workflows may not import it', () => {
    const code = [
      "import { loadPriceTable } from '../pricing';",
      "import { PRICES_FILE_ENV } from '../pricing/index';",
      'export const all = [loadPriceTable, PRICES_FILE_ENV];',
      '',
    ].join('\n');
    expect(lint(code, 'src/workflows/probe.ts')).toHaveLength(2);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
