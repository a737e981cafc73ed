import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import {
  MESSAGE_OVERHEAD_TOKENS,
  REQUEST_OVERHEAD_TOKENS,
  estimateMessageTokens,
  estimateTextTokens,
} from '../../src/activities/token-estimate';
import type { ChatMessage } from '../../src/shared/types';

// Real counts from Maritaca's tokenizer (`maritalk.count_tokens(text, model='sabia-4')`,
// maritalk 0.3.2; sabia-3 shares the vocabulary). Recount one with
// `python bench/tokenizer-accuracy.py --text "..."`.
const SANEAMENTO_PT =
  'A Companhia de Saneamento informou nesta segunda-feira que o abastecimento de água será interrompido ' +
  'em doze bairros da zona norte entre as 8h e as 18h de quarta-feira, para a substituição de uma adutora ' +
  'com mais de quarenta anos de uso. Segundo a empresa, hospitais e escolas receberão caminhões-pipa ' +
  'durante o período.';
const SANEAMENTO_EN =
  'The water utility said on Monday that supply will be interrupted in twelve neighborhoods of the north ' +
  'side between 8 a.m. and 6 p.m. on Wednesday, to replace a water main that has been in use for more than ' +
  'forty years. According to the company, hospitals and schools will receive water trucks during that time.';

const SENTENCES: readonly [string, number][] = [
  ['Olá, mundo!', 5],
  ['Como vai você?', 4],
  ['Com quantos paus se faz uma canoa?', 11],
  ['Qual é a diferença entre juros simples e juros compostos?', 14],
  ['Preço: R$ 1.234,56 — desconto de 15% até 31/12/2025.', 35],
  ['Obrigado pela compra! 😀🎉👍', 9],
];
const PARAGRAPHS: readonly [string, number][] = [
  [SANEAMENTO_PT, 94],
  [SANEAMENTO_EN, 65],
];
const NON_LATIN: readonly [string, number][] = [
  ['Москва — столица России и крупнейший город страны.', 15],
  ['我们明天下午三点在会议室开会，请准时参加。', 11],
  ['東京は日本の首都で、人口は約1400万人です。', 17],
  ['Καλημέρα, θα ήθελα να επιβεβαιώσω την παραγγελία μου.', 46],
  ['मुझे ब्राज़ील का संगीत बहुत पसंद है', 32],
  ['مرحبا، كيف حالك؟ أتمنى لك يوما سعيدا', 18],
];

const ratio = (text: string, real: number): number => estimateTextTokens(text) / real;

describe('estimateTextTokens', () => {
  test('is 0 for the empty string and at least 1 for any other text', () => {
    expect(estimateTextTokens('')).toBe(0);
    expect(estimateTextTokens(' ')).toBeGreaterThanOrEqual(1);
    expect(estimateTextTokens('a')).toBeGreaterThanOrEqual(1);
    expect(estimateTextTokens('\n')).toBeGreaterThanOrEqual(1);
  });

  test.each(SENTENCES)('a sentence is within 30%% of the real count: %s', (text, real) => {
    // One token either way is 10-25% of a short sentence, hence the wide band.
    expect(ratio(text, real)).toBeGreaterThanOrEqual(0.8);
    expect(ratio(text, real)).toBeLessThanOrEqual(1.3);
  });

  test.each(PARAGRAPHS)('a paragraph is within 10%% of the real count: %s', (text, real) => {
    expect(ratio(text, real)).toBeGreaterThanOrEqual(0.9);
    expect(ratio(text, real)).toBeLessThanOrEqual(1.1);
  });

  test('counts Portuguese as costlier than English of the same length, as the real tokenizer does', () => {
    // The same news item, lengths within 5%: 94 real tokens in Portuguese, 65 in English.
    expect(Math.abs(SANEAMENTO_PT.length - SANEAMENTO_EN.length) / SANEAMENTO_EN.length).toBeLessThan(0.05);
    expect(estimateTextTokens(SANEAMENTO_PT)).toBeGreaterThan(estimateTextTokens(SANEAMENTO_EN) * 1.3);
  });

  test('errs high rather than low, but only slightly, over the fixtures', () => {
    const all = [...SENTENCES, ...PARAGRAPHS];
    const real = all.reduce((sum, [, n]) => sum + n, 0);
    const estimate = all.reduce((sum, [text]) => sum + estimateTextTokens(text), 0);
    expect(estimate).toBeGreaterThanOrEqual(real);
    expect(estimate).toBeLessThanOrEqual(real * 1.1);
  });

  test.each(NON_LATIN)('does not badly underestimate non-Latin text: %s', (text, real) => {
    expect(ratio(text, real)).toBeGreaterThanOrEqual(0.8);
    expect(ratio(text, real)).toBeLessThanOrEqual(1.6);
  });

  test('counts every digit, as the tokenizer splits numbers into single digits', () => {
    expect(estimateTextTokens('1234567890')).toBeGreaterThanOrEqual(10); // real: 10
    expect(estimateTextTokens('1234567890')).toBeLessThanOrEqual(12);
    expect(estimateTextTokens('9'.repeat(1000))).toBeGreaterThanOrEqual(1000);
  });

  test('prices a run of whitespace like a few tokens, not one per character', () => {
    const indented = `if (x) {\n${' '.repeat(64)}return 1;\n}`;
    expect(estimateTextTokens(indented)).toBeLessThan(estimateTextTokens('if (x) {\n  return 1;\n}') + 6);
  });

  test('treats decomposed accents like composed ones (Maritaca NFC-normalises first)', () => {
    const composed = 'A solução está na informação.';
    const decomposed = composed.normalize('NFD');
    expect(decomposed).not.toBe(composed);
    expect(Math.abs(estimateTextTokens(decomposed) - estimateTextTokens(composed))).toBeLessThanOrEqual(2);
  });

  test('copes with lone surrogates, emoji sequences and control characters', () => {
    for (const text of ['\ud800', '\udc00abc', '👨‍👩‍👧‍👦', '🇧🇷', '\u0000\u0001\u007f', 'a\u200bb']) {
      const n = estimateTextTokens(text);
      expect(Number.isInteger(n)).toBe(true);
      expect(n).toBeGreaterThanOrEqual(1);
      expect(n).toBeLessThanOrEqual(text.length * 2);
    }
  });

  test('grows with length: repeating a text never lowers the estimate', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.integer({ min: 2, max: 6 }), (s, k) => {
        expect(estimateTextTokens(s.repeat(k))).toBeGreaterThanOrEqual(estimateTextTokens(s.repeat(k - 1)));
      }),
      { numRuns: 2000 },
    );
    let previous = 0;
    for (let k = 1; k <= 20; k++) {
      const n = estimateTextTokens(`${SANEAMENTO_PT} `.repeat(k));
      expect(n).toBeGreaterThan(previous);
      previous = n;
    }
  });

  test('grows with length: appending digits or punctuation never lowers the estimate', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 60 }),
        fc.constantFrom('7', '.', '!', ' 42', '…'),
        (s, tail) => {
          expect(estimateTextTokens(s + tail)).toBeGreaterThanOrEqual(estimateTextTokens(s));
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('grows with length: word by word, a real prompt never loses more than one token', () => {
    // Appending an English word can make the sentence look less Portuguese and so re-price
    // earlier words; on natural text that never costs more than a token.
    for (const text of [SANEAMENTO_PT, SANEAMENTO_EN, ...NON_LATIN.map(([t]) => t)]) {
      let previous = 0;
      for (let i = 1; i <= text.length; i++) {
        if (i < text.length && text[i] !== ' ') continue;
        const n = estimateTextTokens(text.slice(0, i));
        expect(n).toBeGreaterThanOrEqual(previous - 1);
        previous = Math.max(previous, n);
      }
    }
  });

  test('is linear: a text repeated 1000 times costs about 1000 times as much, and fast', () => {
    const once = estimateTextTokens(`${SANEAMENTO_PT}\n`);
    const big = `${SANEAMENTO_PT}\n`.repeat(1000); // ~310 KB
    const started = performance.now();
    const many = estimateTextTokens(big);
    const elapsed = performance.now() - started;
    expect(many / (once * 1000)).toBeGreaterThan(0.97);
    expect(many / (once * 1000)).toBeLessThan(1.01);
    expect(elapsed).toBeLessThan(1000); // ~10 ms here; generous for slow CI machines
  });
});

describe('estimateMessageTokens', () => {
  const user = (content: string): ChatMessage => ({ role: 'user', content });

  test('is 0 for no messages', () => {
    expect(estimateMessageTokens([])).toBe(0);
  });

  test('adds the per-message and per-request overheads of the chat template', () => {
    // ChatML: `<|im_start|>{role}\n{content}<|im_end|>\n` per message, `<|im_start|>assistant\n`
    // once; measured with the real vocabulary, it adds exactly 5 per message and 3 per request.
    expect(MESSAGE_OVERHEAD_TOKENS).toBe(5);
    expect(REQUEST_OVERHEAD_TOKENS).toBe(3);
    const question = 'Qual é a capital do Paraná?';
    expect(estimateMessageTokens([user(question)])).toBe(estimateTextTokens(question) + 5 + 3);
    const systemText = 'Responda em português.';
    const system: ChatMessage = { role: 'system', content: systemText };
    expect(estimateMessageTokens([system, user(question)])).toBe(
      estimateTextTokens(systemText) + estimateTextTokens(question) + 2 * 5 + 3,
    );
  });

  test('charges an empty message its overhead', () => {
    expect(estimateMessageTokens([user('')])).toBe(MESSAGE_OVERHEAD_TOKENS + REQUEST_OVERHEAD_TOKENS);
    expect(estimateMessageTokens([user(''), user('')])).toBe(
      2 * MESSAGE_OVERHEAD_TOKENS + REQUEST_OVERHEAD_TOKENS,
    );
  });
});

describe('accuracy on the bench corpus (bench/fixtures/prompts.jsonl)', () => {
  interface Prompt {
    lang: string;
    messages: ChatMessage[];
    realTokens: number;
  }
  const prompts: Prompt[] = readFileSync(
    path.join(__dirname, '..', '..', 'bench', 'fixtures', 'prompts.jsonl'),
    'utf8',
  )
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Prompt);

  const errors = prompts.map((p) => {
    const estimate = p.messages.reduce((sum, m) => sum + estimateTextTokens(String(m.content)), 0);
    return { lang: p.lang, real: p.realTokens, estimate, error: (estimate - p.realTokens) / p.realTokens };
  });

  test('the corpus is large and mostly Portuguese', () => {
    expect(prompts.length).toBeGreaterThanOrEqual(300);
    expect(prompts.filter((p) => p.lang === 'pt').length / prompts.length).toBeGreaterThan(0.5);
  });

  test('mean absolute error under 7%, p95 under 20%, total 0-5% high', () => {
    const abs = errors.map((e) => Math.abs(e.error)).sort((a, b) => a - b);
    const mape = abs.reduce((a, b) => a + b, 0) / abs.length;
    const p95 = abs[Math.floor(0.95 * (abs.length - 1))]!;
    const total = errors.reduce((s, e) => s + e.estimate, 0) / errors.reduce((s, e) => s + e.real, 0);
    expect(mape).toBeLessThan(0.07);
    expect(p95).toBeLessThan(0.2);
    expect(total).toBeGreaterThanOrEqual(1);
    expect(total).toBeLessThan(1.05);
  });

  test.each(['pt', 'en', 'mixed', 'code'])('%s: total within -2%% and +8%% of the real count', (lang) => {
    const rows = errors.filter((e) => e.lang === lang);
    const total = rows.reduce((s, e) => s + e.estimate, 0) / rows.reduce((s, e) => s + e.real, 0);
    expect(total).toBeGreaterThan(0.98);
    expect(total).toBeLessThan(1.08);
  });
});
