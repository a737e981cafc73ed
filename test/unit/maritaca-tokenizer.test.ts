/**
 * The Node tokenizer counts exactly what `maritalk.count_tokens` counts. Texts are generated
 * from a seed (Portuguese and English prose, accents, emoji, code, numbers, whitespace runs,
 * short and long) plus hand-written edge cases, and counted by maritalk in one Python process
 * from the tools venv, at the version the shipped vocabularies were extracted from (installed
 * there when missing; the comparison is skipped, loudly, when pip cannot).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { KNOWN_MODELS } from '../../src/shared';
import { installIntoToolsVenv, isExecutable, toolsVenvCommand } from '../../src/testing/tools-venv';
import {
  countTokens,
  hasExactTokenizer,
  MaritacaTokenizer,
  TOKENIZER_FAMILIES,
  tokenizerFamilyOf,
  type TokenizerFamily,
} from '../../src/tokenizer';
import { JS_SPLIT_PATTERN, MARITALK_SPLIT_PATTERN } from '../../src/tokenizer/split-pattern';
import { mulberry32 } from '../../src/testing/seeded-random';
import { DEFAULT_TOKENIZER_DATA_DIR, readManifest } from '../../src/tokenizer/vocabulary';

const manifest = readManifest(DEFAULT_TOKENIZER_DATA_DIR);

// ---------------------------------------------------------------------------------------------
// Text generator

const PT_WORDS = (
  'de a o que e do da em um para é com não uma os no se na por mais as dos como mas foi ao ele das ' +
  'tem à seu sua ou ser quando muito há nos já está eu também só pelo pela até isso ela entre era ' +
  'você ação coração informação informações São Paulo Brasília Paraná pão mãe irmã órgão três avó ' +
  'avô açúcar café saúde país países público mês português próximo específico cidadão lições eleição ' +
  'óculos pôr pôde têm vêm crê Ibirapuera pinguim sequência tranquilo ÁGUA AÇÃO Ceará Maranhão ' +
  'boleto fatura cobrança atendimento cliente operadora farmácia diagnóstico profissional responda ' +
  'cordial objetiva assistente resumo tradução classificação sentimento avaliação produto entrega ' +
  'atrasada reembolso Itaú Bradesco anônimo útil fácil difícil possível inviável àquela àquilo'
).split(' ');
const EN_WORDS = (
  'the quick brown fox jumps over lazy dog it is was and of to in that have for not on with as you ' +
  "at this but his by from they we say her she or an will my one all would there their what it's " +
  "don't I'm we're they've she'll he'd YOU'RE IT'S Won't can't customer invoice refund delivery " +
  'summarize translate classify sentiment review rating helpful assistant Please Thanks JavaScript ' +
  'TypeScript API JSON HTTP naïve café résumé coöperate Zürich São'
).split(' ');
const EMOJI = ['😀', '👍🏽', '🇧🇷', '👨‍👩‍👧‍👦', '❤️', '1️⃣', '🤖', '☕', '🎉🎉🎉', '©', '™', '✅', '🙏🏾', '🏳️‍🌈'];
const PUNCT = [
  '.',
  ',',
  '!',
  '?',
  '...',
  '—',
  '–',
  '“',
  '”',
  '«',
  '»',
  '(',
  ')',
  ':',
  ';',
  '’',
  "'",
  '"',
  '?!',
];
const WHITESPACE = [
  ' ',
  '  ',
  '    ',
  '\t',
  '\t\t',
  '\n',
  '\n\n',
  '\n\n\n',
  '\r\n',
  ' \n ',
  '   \n\n   ',
  '\u00a0',
  '\u3000',
  '\u2028',
  '\u0085',
  '\ufeff',
  '\u200b',
  '\v',
  '\f',
];
const CODE = [
  'function soma(a, b) {\n  return a + b;\n}\n',
  'def média(valores):\n    """Média aritmética."""\n    return sum(valores) / len(valores)\n',
  'SELECT nome, preço FROM produtos WHERE preço > 10.5 ORDER BY nome DESC;',
  '{"id": 1, "ação": "comprar", "itens": [1, 2, 3], "ok": true, "nota": null}',
  '$ npm install --save-dev jest && npx jest --runInBand\n',
  '<div class="título">Olá, <b>mundo</b>!</div>',
  'if (x !== null && y >= 0) { console.log(`valor: ${x}`); }',
  '\tfor i in range(10):\n\t\tprint(i ** 2)\r\n',
  'const re = /^[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}$/i; // e-mail\n',
  'fetch("https://example.com/api/v1/itens?página=2&tamanho=50#topo")',
  '| Coluna | Valor |\n|--------|------:|\n| preço  | 10,50 |\n',
  'C:\\Users\\joão\\Documents\\relatório_final_v2.docx',
  '#include <stdio.h>\nint main(void) { printf("%d\\n", 42); return 0; }\n',
  '    } catch (err) {\n        throw new Error("falhou: " + err.message);\n    }\n',
];
const NUMBERS = [
  'R$ 1.234,56',
  '3.14159',
  '-42',
  '1e-9',
  '2024-03-15',
  '15/03/2024 14:30:00',
  '+55 (11) 91234-5678',
  'CPF 123.456.789-09',
  '½',
  'x²',
  'Ⅻ',
  '٣٤٥',
  '१२३',
  '𝟘𝟙𝟚',
  '100%',
  '0xFF',
  '1,000,000.00',
];

/** Makes a text of one of several kinds; `kind` cycles so every kind gets its share. */
function makeText(random: () => number, kind: number): string {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const int = (min: number, max: number): number => min + Math.floor(random() * (max - min + 1));
  const digits = (n: number): string => Array.from({ length: n }, () => String(int(0, 9))).join('');
  const capitalise = (w: string): string => w.charAt(0).toUpperCase() + w.slice(1);
  const sentence = (words: readonly string[], n: number): string => {
    const parts: string[] = [];
    for (let i = 0; i < n; i++) {
      let w = pick(words);
      if (i === 0 || random() < 0.08) w = capitalise(w);
      if (random() < 0.03) w = w.toUpperCase();
      parts.push(w);
      if (random() < 0.12) parts[parts.length - 1] += pick([',', ';', ':', ' —', ' (', ')']);
    }
    return parts.join(' ') + pick(['.', '.', '.', '?', '!', '...', '']);
  };
  const anything = (): string => {
    const r = random();
    if (r < 0.35) return pick(PT_WORDS);
    if (r < 0.55) return pick(EN_WORDS);
    if (r < 0.65) return pick(EMOJI);
    if (r < 0.75) return pick(NUMBERS);
    if (r < 0.82) return digits(int(1, 25));
    if (r < 0.9) return pick(PUNCT);
    return pick(WHITESPACE);
  };
  switch (kind % 9) {
    case 0: // Portuguese prose, one or more paragraphs
      return Array.from({ length: int(1, 4) }, () => sentence(PT_WORDS, int(3, 30))).join(
        pick([' ', '\n', '\n\n']),
      );
    case 1: // English prose
      return Array.from({ length: int(1, 4) }, () => sentence(EN_WORDS, int(3, 30))).join(
        pick([' ', '\n', '\n\n']),
      );
    case 2: // everything mixed, glued by random separators
      return Array.from({ length: int(1, 60) }, anything).join(pick(['', ' ', ' ', '\n', '\t', '  ']));
    case 3: // code with prose comments and indentation changes
      return Array.from({ length: int(1, 4) }, () =>
        random() < 0.7 ? pick(CODE) : `${pick(['// ', '# ', '-- '])}${sentence(PT_WORDS, int(2, 10))}\n`,
      )
        .map((line) => (random() < 0.3 ? ' '.repeat(int(1, 12)) + line : line))
        .join('');
    case 4: // numbers in sentences and on their own
      return Array.from({ length: int(1, 12) }, () =>
        random() < 0.5 ? pick(NUMBERS) : `${pick(PT_WORDS)} ${digits(int(1, 12))}`,
      ).join(pick([' ', ', ', '; ', '\n']));
    case 5: // whitespace runs around words
      return Array.from({ length: int(1, 20) }, () =>
        random() < 0.5 ? pick(WHITESPACE).repeat(int(1, 6)) : pick(random() < 0.5 ? PT_WORDS : EN_WORDS),
      ).join('');
    case 6: // short: one to three characters
      return Array.from({ length: int(1, 3) }, anything)
        .join('')
        .slice(0, int(1, 3));
    case 7: // decomposed accents, so that NFC normalisation matters
      return sentence(PT_WORDS, int(3, 25)).normalize('NFD');
    default: // long: several kilobytes of everything
      return Array.from({ length: int(8, 20) }, () => makeText(random, int(0, 5))).join(
        pick(['\n\n', ' ', '\n']),
      );
  }
}

const HAND_WRITTEN = [
  '',
  ' ',
  '\n',
  'a',
  'é',
  'e\u0301',
  "'s",
  "'S",
  "'ſ",
  "'ſaber",
  "'ll",
  "'LL",
  "'Ll",
  "I'M HERE",
  'don’t',
  "rock'n'roll",
  '    leading spaces',
  'trailing spaces    ',
  'x\u0085y',
  'x\ufeffy',
  'a\u00a0b',
  '\u3000\u3000全角',
  '1234567890',
  '١٢٣ ۴۵۶',
  'ﬁnal ﬂor',
  'ǅemal',
  '😀'.repeat(10),
  '👨‍👩‍👧‍👦 família',
  '🇧🇷🇵🇹',
  'a'.repeat(3000),
  'abcdefghijklmnopqrstuvwxyz'.repeat(40),
  '='.repeat(500),
  ' '.repeat(1000),
  '\n'.repeat(100),
  '\r\n\r\n',
  '\t\t\tcode',
  '\ud800abc',
  'abc\udc00',
  '\u{10FFFF}',
  'São Paulo, 25 de janeiro de 1554.',
  'Ελληνικά Русский 中文 日本語 한국어 العربية עברית हिन्दी ไทย',
  'SGVsbG8sIG11bmRvISBPbMOhLCBtdW5kbyE='.repeat(20),
  'joão.silva+teste@exemplo.com.br',
  'AÇÃO, ÓRGÃO, PÃO E MÃE.',
  'Qual é a capital do Paraná?',
];

const GENERATED_TEXTS = 720;
const random = mulberry32(20240315);
const TEXTS = [...HAND_WRITTEN, ...Array.from({ length: GENERATED_TEXTS }, (_, i) => makeText(random, i))];

// ---------------------------------------------------------------------------------------------
// maritalk in one Python process

const MARITALK_REQUIREMENT = `maritalk==${manifest.source.version}`;

// Reads {"jobs": [{"texts": [...], "models": [...]}, ...]} on stdin and answers one
// {model: counts | {"error": ...}} per job. Offline switches: only the sabia-2 models would reach
// a model hub, and none is asked for.
const COUNT_SCRIPT = `
import json, os, sys, warnings
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
warnings.filterwarnings("ignore")
from maritalk import count_tokens
answers = []
for job in json.loads(sys.stdin.buffer.read().decode("utf-8"))["jobs"]:
    answer = {}
    for model in job["models"]:
        try:
            answer[model] = count_tokens(job["texts"], model=model)
        except Exception as err:
            answer[model] = {"error": f"{type(err).__name__}: {err}"}
    answers.append(answer)
sys.stdout.write(json.dumps(answers))
`;

type PythonAnswer = Record<string, number[] | { error: string }>;

function maritalkVersion(python: string): string | undefined {
  try {
    return execFileSync(python, ['-c', 'import importlib.metadata as m; print(m.version("maritalk"))'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return undefined;
  }
}

/** A Python with the pinned maritalk, installing it into the tools venv when needed; or why not. */
async function preparePython(): Promise<{ python: string } | { skip: string }> {
  const wanted = manifest.source.version;
  const explicit = process.env.MARITALK_PYTHON?.trim();
  if (explicit) {
    const found = maritalkVersion(explicit);
    return found === wanted
      ? { python: explicit }
      : { skip: `MARITALK_PYTHON has maritalk ${found ?? '(none)'}, the vocabularies come from ${wanted}` };
  }
  const venvPython = toolsVenvCommand('python');
  if ((await isExecutable(venvPython)) && maritalkVersion(venvPython) === wanted)
    return { python: venvPython };
  try {
    console.log(`maritalk ${wanted} is not in the tools venv: installing it for the comparison`);
    const python = await installIntoToolsVenv(
      MARITALK_REQUIREMENT,
      { command: 'python', envVar: 'MARITALK_PYTHON', venvFirst: true },
      (line) => console.log(line),
    );
    const found = maritalkVersion(python);
    return found === wanted
      ? { python }
      : { skip: `pip installed maritalk ${found ?? '(none)'}, not ${wanted}` };
  } catch (err) {
    return { skip: (err as Error).message.split('\n')[0]! };
  }
}

interface CountJob {
  texts: readonly string[];
  models: readonly string[];
}

/** Runs every job in one Python process: importing maritalk takes seconds, counting does not. */
function countWithMaritalk(python: string, jobs: readonly CountJob[]): PythonAnswer[] {
  try {
    const out = execFileSync(python, ['-c', COUNT_SCRIPT], {
      input: JSON.stringify({ jobs }),
      maxBuffer: 256 * 1024 * 1024,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return JSON.parse(out.toString('utf8')) as PythonAnswer[];
  } catch (err) {
    throw new Error(
      `maritalk failed: ${(err as Error).message}\n${(err as { stderr?: Buffer }).stderr ?? ''}`,
    );
  }
}

function countsOf(answer: PythonAnswer, model: string): number[] {
  const counts = answer[model];
  if (!Array.isArray(counts))
    throw new Error(`maritalk could not count for ${model}: ${JSON.stringify(counts)}`);
  return counts;
}

/** Texts whose counts differ, with both counts, for a readable failure. */
function mismatches(
  texts: readonly string[],
  expected: readonly number[],
  actual: readonly (number | undefined)[],
) {
  return texts
    .map((text, i) => ({
      text: text.length > 120 ? `${text.slice(0, 120)}…` : text,
      maritalk: expected[i],
      node: actual[i],
    }))
    .filter(({ maritalk, node }) => maritalk !== node);
}

// ---------------------------------------------------------------------------------------------

describe('model to tokenizer family, as maritalk maps them', () => {
  test.each([
    ['sabia-4', 'sabia-4'],
    ['sabia-4-br-sp', 'sabia-4'],
    ['sabiazinho-4', 'sabia-4'],
    ['sabiazinho-4-br-sp', 'sabia-4'],
    ['sabia-4-thinking', 'sabia-4'],
    ['sabia-4-thinking-br-sp', 'sabia-4'],
    ['sabiazim-4', 'sabia-4'],
    ['sabia-3.1', 'sabia-3'],
    ['sabia-3', 'sabia-3'],
    ['sabiazinho-3', 'sabia-3'],
  ])('%s counts with the %s tokenizer', (model, family) => {
    expect(tokenizerFamilyOf(model)).toBe(family);
    expect(hasExactTokenizer(model)).toBe(true);
  });

  test.each(['sabia-2-small', 'sabia-2-medium', 'gpt-4o', 'Sabia-4', ''])(
    '%p has no shipped tokenizer',
    (model) => {
      expect(tokenizerFamilyOf(model)).toBeUndefined();
      expect(hasExactTokenizer(model)).toBe(false);
      expect(countTokens('Olá', model)).toBeUndefined();
    },
  );

  test('every model with a price has an exact tokenizer', () => {
    expect(KNOWN_MODELS.filter((model) => !hasExactTokenizer(model))).toEqual([]);
  });
});

describe('MaritacaTokenizer', () => {
  test('reads nothing until the first count for a family', () => {
    const missing = mkdtempSync(path.join(tmpdir(), 'no-tokenizer-data-'));
    try {
      const tokenizer = new MaritacaTokenizer({ dataDir: missing });
      expect(tokenizer.countTokens('Olá', 'gpt-4o')).toBeUndefined();
      expect(tokenizer.isLoaded('sabia-4')).toBe(false);
      expect(() => tokenizer.countTokens('Olá', 'sabia-4')).toThrow(/tokenizer manifest/);
    } finally {
      rmSync(missing, { recursive: true, force: true });
    }
  });

  test('loads one family at a time and caches it', () => {
    const tokenizer = new MaritacaTokenizer();
    expect(tokenizer.countTokens('Olá, mundo!', 'sabia-4')).toBe(5);
    expect(tokenizer.isLoaded('sabia-4')).toBe(true);
    expect(tokenizer.isLoaded('sabia-3')).toBe(false);
    expect(tokenizer.countTokens('Olá, mundo!', 'sabia-3.1')).toBe(5);
    expect(tokenizer.isLoaded('sabia-3')).toBe(true);
  });

  test('normalises to NFC first, as maritalk does', () => {
    expect(countTokens('ação coração', 'sabia-4')).toBe(
      countTokens('ação coração'.normalize('NFD'), 'sabia-4'),
    );
    expect(countTokens('', 'sabia-4')).toBe(0);
  });

  test('the shipped manifest carries the pattern the fast split translates', () => {
    // A new maritalk pattern would still count exactly (through tiktoken's own split), only
    // slower: this says when split-pattern.ts needs a new translation.
    expect(manifest.pattern).toBe(MARITALK_SPLIT_PATTERN);
    expect(manifest.specialTokens).toEqual({});
  });
});

// sabia-2 is left out: maritalk would fetch its tokenizer from a model hub; Node has none.
const MODEL_NAMES = [...KNOWN_MODELS, 'sabiazim-4', 'gpt-4o', 'Sabia-4'];
const MODEL_SAMPLE = TEXTS.slice(0, 80);

/**
 * Each code point in letter, digit, space, newline and apostrophe contexts, so that a character
 * class the JavaScript split pattern reads differently from Rust's would change a count: the BMP
 * whole, the first supplementary plane every third point, sparser beyond. Normalised to NFC here,
 * because Node and older Pythons disagree on a few characters new in Unicode 16: a difference in
 * normalisation tables, not in the tokenizer.
 */
function unicodeProbes(): { points: number; probes: string[] } {
  const points: number[] = [];
  for (let c = 0; c < 0x110000; c += c < 0x10000 ? 1 : c < 0x20000 ? 3 : c < 0x40000 ? 61 : 4093) {
    if (c < 0xd800 || c > 0xdfff) points.push(c);
  }
  const probes: string[] = [];
  for (let i = 0; i < points.length; i += 256) {
    const chunk = points.slice(i, i + 256).map((c) => {
      const ch = String.fromCodePoint(c);
      return `x${ch}y ${ch}1${ch}${ch}  ${ch}\n'${ch}`;
    });
    probes.push(chunk.join('\n').normalize('NFC'));
  }
  return { points: points.length, probes };
}

/**
 * A data folder with the given vocabulary and pattern, laid out as the extraction script lays
 * out data/tokenizer/. Both families point at the one file.
 */
function writeDataDir(vocabulary: readonly Buffer[] | 'shipped', pattern: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'tokenizer-data-'));
  let entry = manifest.encodings['sabia-4'];
  if (vocabulary === 'shipped') {
    copyFileSync(path.join(DEFAULT_TOKENIZER_DATA_DIR, entry.file), path.join(dir, entry.file));
  } else {
    const text = vocabulary.map((token) => token.toString('base64') + '\n').join('');
    entry = {
      file: 'bpe-test.txt.gz',
      tokens: vocabulary.length,
      sha256: createHash('sha256').update(text).digest('hex'),
    };
    writeFileSync(path.join(dir, entry.file), gzipSync(text));
  }
  const encodings = { 'sabia-3': entry, 'sabia-4': entry };
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ ...manifest, pattern, encodings }));
  return dir;
}

// The same pattern in other words: the tokenizer then leaves splitting to tiktoken's Rust regex.
const NATIVE_SPLIT_PATTERN = `(?:${MARITALK_SPLIT_PATTERN})`;

describe('the JavaScript split pattern', () => {
  test("cuts the same pieces as tiktoken's own split, on every test text and Unicode probe", () => {
    const dir = writeDataDir('shipped', NATIVE_SPLIT_PATTERN);
    try {
      const native = new MaritacaTokenizer({ dataDir: dir });
      const fast = new MaritacaTokenizer();
      const texts = [...TEXTS, ...unicodeProbes().probes];
      const nativeCounts = texts.map((text) => native.countFamilyTokens(text, 'sabia-4'));
      expect(
        mismatches(
          texts,
          nativeCounts,
          texts.map((text) => fast.countFamilyTokens(text, 'sabia-4')),
        ),
      ).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("matches contractions case-insensitively as Rust does, where 's' also matches 'ſ'", () => {
    expect("'ſaber\n'Saber'LL".match(new RegExp(JS_SPLIT_PATTERN, 'gu'))).toEqual([
      "'ſ",
      'aber',
      '\n',
      "'S",
      'aber',
      "'LL",
    ]);
    // The shipped vocabulary has no token joining ſ to a neighbour, so only a made-up one can
    // show the difference: 'ſ is one token, and ſaber one more if the split let them meet.
    const bytes = Array.from({ length: 256 }, (_, b) => Buffer.from([b]));
    const extra = ['ſ', 'ſa', 'ſab', 'ſabe', 'ſaber', "'ſ"].map((token) => Buffer.from(token));
    for (const pattern of [MARITALK_SPLIT_PATTERN, NATIVE_SPLIT_PATTERN]) {
      const dir = writeDataDir([...bytes, ...extra], pattern);
      try {
        expect(new MaritacaTokenizer({ dataDir: dir }).countFamilyTokens("'ſaber", 'sabia-4')).toBe(5);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });
});

describe('equal to maritalk.count_tokens', () => {
  const { points, probes } = unicodeProbes();
  let skip: string | undefined;
  let byFamily: PythonAnswer;
  let byModel: PythonAnswer;
  let byProbe: PythonAnswer;

  beforeAll(async () => {
    const prepared = await preparePython();
    if ('skip' in prepared) {
      skip = prepared.skip;
      console.warn(`\n!!!!!!!!\n!!! SKIPPING the comparison with maritalk: ${skip}\n!!!!!!!!\n`);
      return;
    }
    const started = performance.now();
    [byFamily, byModel, byProbe] = countWithMaritalk(prepared.python, [
      { texts: TEXTS, models: TOKENIZER_FAMILIES },
      { texts: MODEL_SAMPLE, models: MODEL_NAMES },
      { texts: probes, models: ['sabia-4'] },
    ]) as [PythonAnswer, PythonAnswer, PythonAnswer];
    console.log(
      `maritalk counted in ${(performance.now() - started).toFixed(0)} ms (one process, import included)`,
    );
  }, 900_000);

  test(`on ${TEXTS.length} texts, for both families`, () => {
    if (skip) return;
    const started = performance.now();
    const tokenizer = new MaritacaTokenizer();
    for (const family of TOKENIZER_FAMILIES) {
      const node = TEXTS.map((text) => tokenizer.countFamilyTokens(text, family));
      expect(mismatches(TEXTS, countsOf(byFamily, family), node)).toEqual([]);
    }
    const chars = TEXTS.reduce((sum, text) => sum + text.length, 0);
    console.log(
      `${TEXTS.length} texts (${chars} characters) x ${TOKENIZER_FAMILIES.length} families agree; ` +
        `Node took ${(performance.now() - started).toFixed(0)} ms, vocabulary load included`,
    );
  });

  test('for every model name, as maritalk maps it', () => {
    if (skip) return;
    for (const model of MODEL_NAMES) {
      const expected = byModel[model];
      const node = MODEL_SAMPLE.map((text) => countTokens(text, model));
      if (Array.isArray(expected)) expect({ model, node }).toEqual({ model, node: expected });
      else expect({ model, node: node.filter((n) => n !== undefined) }).toEqual({ model, node: [] });
    }
  });

  test('on probes of every kind of character across Unicode', () => {
    if (skip) return;
    const started = performance.now();
    const node = probes.map((text) => countTokens(text, 'sabia-4'));
    expect(mismatches(probes, countsOf(byProbe, 'sabia-4'), node)).toEqual([]);
    console.log(
      `${points} code points in ${probes.length} probes agree; Node took ${(performance.now() - started).toFixed(0)} ms`,
    );
  });
});

describe('speed', () => {
  test('counts 100,000 two-message requests, vocabulary and WASM load included', () => {
    const random = mulberry32(7);
    // Generating 100,000 texts would take longer than counting them: requests draw from pools,
    // and the number each one ends with keeps no two of them alike.
    const systems = Array.from({ length: 40 }, (_, i) => makeText(random, i % 2 === 0 ? 0 : 1));
    const users = Array.from({ length: 5000 }, (_, i) => makeText(random, [0, 1, 2, 4, 7][i % 5]!));
    const requests = Array.from({ length: 100_000 }, (_, i) => [
      systems[i % systems.length]!,
      `${users[i % users.length]!} (pedido ${i})`,
    ]);
    const chars = requests.reduce((sum, [a, b]) => sum + a!.length + b!.length, 0);
    const family: TokenizerFamily = 'sabia-4';
    // A fresh module registry, so that the WASM module is compiled again as in a new worker
    // process; the first count loads everything, and must run inside it to use that registry.
    const started = performance.now();
    let tokenizer!: MaritacaTokenizer;
    jest.isolateModules(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const fresh = require('../../src/tokenizer/maritaca-tokenizer') as {
        MaritacaTokenizer: typeof MaritacaTokenizer;
      };
      tokenizer = new fresh.MaritacaTokenizer();
      tokenizer.countFamilyTokens('', family);
    });
    const loaded = performance.now();
    let tokens = 0;
    for (const [system, user] of requests)
      tokens += tokenizer.countFamilyTokens(system!, family) + tokenizer.countFamilyTokens(user!, family);
    const done = performance.now();
    console.log(
      `100,000 two-message requests (${(chars / 1e6).toFixed(1)} M characters, ${tokens} tokens): ` +
        `${(done - started).toFixed(0)} ms, of which loading ${(loaded - started).toFixed(0)} ms`,
    );
    expect(tokens).toBeGreaterThan(chars / 10);
  });
});
