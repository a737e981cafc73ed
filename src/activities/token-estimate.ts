import { countTokens, hasExactTokenizer } from '../tokenizer';
import { textsOf } from '../shared/chat-content';
import type { ChatMessage } from '../shared/types';

/*
 * Token-count estimator for Maritaca's Sabiá models, used to price a batch before it runs.
 *
 * The real tokenizer (published in the `maritalk` Python package for sabia-3 and sabia-4,
 * which share one vocabulary) is a byte-level BPE with 151,643 tokens whose vocabulary,
 * token ids and split pattern match the Qwen2 family's. Its pre-tokenizer
 * splits text into: letter runs with at most one leading non-letter character, single
 * digits, punctuation runs, and whitespace runs. Tokens never cross those pieces, so this
 * estimator walks the same pieces in one pass and only has to guess how many BPE tokens
 * each piece becomes. Digits, punctuation and whitespace are nearly exact; letter runs
 * are the guess.
 *
 * Letter runs are where language matters. The vocabulary holds nearly every common English
 * word as a single token, but only the most frequent Portuguese words: a 10-letter
 * Portuguese word averages ~2.3 tokens where an English one averages ~1.1. So every word
 * is costed twice, once under a Portuguese and once under an English length curve, and
 * the two are blended by how Portuguese the surrounding sentence looks (frequent function
 * words of each language, accented letters). The constants below were fitted against the
 * real tokenizer on bench/fixtures/prompts.jsonl; bench/tokenizer-accuracy.js measures it.
 */

/**
 * Tokens added around each message (role and delimiters), on top of its content.
 *
 * Measured with the real vocabulary on a ChatML rendering (`<|im_start|>{role}\n{content}<|im_end|>\n`),
 * the template this vocabulary family was built for. Maritaca does not publish its template,
 * so this and {@link REQUEST_OVERHEAD_TOKENS} are the part of the estimate not checked against
 * Maritaca itself: compare them with `usage.prompt_tokens` of real calls.
 */
export const MESSAGE_OVERHEAD_TOKENS = 5;
/** Tokens added once per request: the opening of the assistant's turn (`<|im_start|>assistant\n`). */
export const REQUEST_OVERHEAD_TOKENS = 3;

// Fitted constants. Kept in one object so the fit can be redone by swapping it wholesale.
const K = {
  /** Portuguese curve: a non-frequent 4-letter word costs `ptBase`, each further letter `ptSlope`. */
  ptBase: 1.42,
  ptSlope: 0.125,
  /** English curve: the vocabulary covers English words up to about this length whole. */
  enFree: 13,
  enSlope: 0.12,
  /** Extra cost of a capitalised word: BPE vocabularies hold fewer capitalised forms. */
  ptCap: 0.33,
  enCap: 0.02,
  /** Each accented letter in a non-frequent word tends to break a merge. */
  accent: 0.18,
  /** ALL-CAPS words: acronyms up to `upperFree` letters are usually one token; longer ones split. */
  upperFree: 5,
  ptUpperSlope: 0.36,
  enUpperSlope: 0.3,
  /** Each lower-to-upper case change (camelCase identifiers) starts a new token. */
  camel: 0.1,
  /** A single punctuation character glued to the following word (`.com`, `/docs`, `(x`). */
  glued: 0.06,
  /** Punctuation runs: the first `punctFree` ASCII characters are one token, then this each. */
  punctFree: 3,
  punctSlope: 0.7,
  /** Non-ASCII symbols (dashes, typographic quotes, emoji). */
  symbol: 1,
  /** Newlines that follow punctuation are merged into its token. */
  newlineAfterPunct: 0.1,
  /** Tokens per character for letters of other scripts. */
  cyrillic: 0.38,
  greek: 1,
  arabic: 0.46,
  hebrew: 0.4,
  indic: 1.2,
  thai: 0.47,
  han: 0.49,
  kana: 0.68,
  hangul: 0.84,
  otherScript: 1,
  /** Pseudo-evidence for the sentence-level language blend, and the text-level prior. */
  chunkPrior: 0.6,
  priorPt: 1,
  priorEn: 0.6,
  /** Evidence one accented word gives for Portuguese (ã, õ, ç, â, ê, ô weigh double). */
  accentEvidence: 0.5,
  /** A word with no space before it (line start, after a quote) misses the vocabulary's spaced forms. */
  noSpace: 0.1,
  /** Final scale and rounding, so that the estimate errs slightly high: it feeds a budget. */
  scale: 1.03,
  roundUp: 0.99,
} as const;

// Frequent words that the real vocabulary holds as a single token (with a leading space),
// listed from general word-frequency knowledge and each checked against the tokenizer.
// They cost exactly one token, and they are the evidence for which language a sentence is in.
const PT_WORDS =
  'de a o que e do da em um para é com não uma os no se na por mais as dos como mas foi ao ele das tem à seu ' +
  'sua ou ser quando muito há nos já está eu também só pelo pela até isso ela entre era depois sem mesmo aos ' +
  'ter seus quem nas me esse eles estão você tinha foram essa num nem suas meu às minha têm numa pelos seja ' +
  'qual será nós dele tu te vos nosso nossa dela esta estas estamos estava sou são seria tive fazer faz pode ' +
  'podem poder deve dever ainda agora sempre nunca hoje aqui ali lá onde porque pois então assim bem mal sim ' +
  'cada todo toda todos todas outro outra outros outras mesma tanto menos maior menor melhor primeiro ' +
  'primeira segundo segunda último última novo nova grande grandes boa bom ano anos dia dias vez vezes tempo ' +
  'vida casa mundo país trabalho parte forma caso lugar pessoa pessoas homem mulher criança filho pai mãe ' +
  'governo empresa cidade estado sistema problema questão exemplo momento processo serviço produto cliente ' +
  'valor preço dinheiro conta pedido informação informações dados nome número data hora horas semana meses ' +
  'história saúde lei contrato documento texto resposta sobre contra desde durante após antes sob conforme ' +
  'enquanto porém logo apenas ver vai vou vamos dar disse saber sei sabe quer fica usar uso precisa pagar ' +
  'pago receber enviar começar seguir encontrar mostrar acordo favor';
const EN_WORDS =
  'the be to of and a in that have i it for not on with he as you do at this but his by from they we say her ' +
  'she or an will my one all would there their what so up out if about who get which go me when make can ' +
  'like time no just him know take people into year your good some could them see other than then now look ' +
  'only come its over think also back after use two how our work first well way even new want because any ' +
  'these give day most us is are was were been has had did does said made should may might must shall here ' +
  'where why very more many much such own same both each few those every through during before between ' +
  'under again further once off down above below while until against among without within along following ' +
  'across behind beyond plus except since per via yes ok please thanks thank hello hi world help answer ' +
  'question text write list explain summary sentence review customer order email';
// Programming keywords: code is costed like English, whatever language the prose around it is in.
const CODE_WORDS =
  'return def function const let var import class self print null true false else elif while async await ' +
  'public static void int string bool float none lambda try except catch finally throw raise yield export ' +
  'interface type struct func package select where join group insert update delete create table values set ' +
  'index limit offset console log error println printf echo sudo npm pip git docker http https www json html ' +
  'css src';

const PT_FLAG = 1;
const EN_FLAG = 2;

function foldCase(code: number): number {
  if (code >= 0x41 && code <= 0x5a) return code + 32;
  if (code >= 0xc0 && code <= 0xde && code !== 0xd7) return code + 32;
  return code;
}
const FNV_OFFSET = 0x811c9dc5;
/** One FNV-1a step over a case-folded letter: words are hashed while scanning, so no string is built. */
function hashStep(hash: number, code: number): number {
  return Math.imul(hash ^ foldCase(code), 0x01000193) >>> 0;
}

const COMMON_WORDS: ReadonlyMap<number, number> = (() => {
  const map = new Map<number, number>();
  const add = (list: string, flag: number): void => {
    for (const word of list.split(' ')) {
      let hash = FNV_OFFSET;
      for (let i = 0; i < word.length; i++) hash = hashStep(hash, word.charCodeAt(i));
      map.set(hash, (map.get(hash) ?? 0) | flag);
    }
  };
  add(PT_WORDS, PT_FLAG);
  add(EN_WORDS, EN_FLAG);
  add(CODE_WORDS, EN_FLAG);
  return map;
})();

// Character classes. Anything not listed is punctuation or a symbol.
const SPACE = 1;
const NEWLINE = 2;
const DIGIT = 3;
const LATIN = 4;
const MARK = 5; // combining accent: part of the word, adds no letter
const SCRIPT = 6; // letter of another script
const PUNCT = 7;

function classOf(c: number): number {
  if (c < 0x80) {
    if (c >= 0x61 && c <= 0x7a) return LATIN;
    if (c >= 0x41 && c <= 0x5a) return LATIN;
    if (c === 0x20 || c === 0x09 || c === 0x0b || c === 0x0c) return SPACE;
    if (c === 0x0a || c === 0x0d) return NEWLINE;
    if (c >= 0x30 && c <= 0x39) return DIGIT;
    return PUNCT;
  }
  if (c >= 0xc0 && c <= 0x24f) return c === 0xd7 || c === 0xf7 ? PUNCT : LATIN;
  if (c === 0xaa || c === 0xb5 || c === 0xba) return LATIN;
  if (c === 0xa0 || c === 0x85 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a)) return SPACE;
  if (c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000) return SPACE;
  if (c === 0xb2 || c === 0xb3 || c === 0xb9 || (c >= 0xbc && c <= 0xbe)) return DIGIT;
  if (c >= 0x300 && c <= 0x36f) return MARK;
  if (c >= 0x1e00 && c <= 0x1eff) return LATIN;
  if (c >= 0x370 && c <= 0x1fff) return SCRIPT; // Greek to Ethiopic, Cyrillic, Arabic, Indic, Thai, Hangul jamo
  // Kana and CJK ideographs; between them sit Bopomofo, strokes and enclosed forms, costed as symbols.
  if (c >= 0x3040 && c <= 0x9fff) return c >= 0x3100 && c < 0x3400 ? PUNCT : SCRIPT;
  if (c >= 0xac00 && c <= 0xd7af) return SCRIPT; // Hangul syllables
  if (c >= 0xf900 && c <= 0xfaff) return SCRIPT;
  return PUNCT;
}

/** Tokens per character of a letter of another script. */
function scriptRate(c: number): number {
  if (c >= 0x400 && c <= 0x52f) return K.cyrillic;
  if (c < 0x400) return K.greek;
  if (c >= 0x590 && c <= 0x5ff) return K.hebrew;
  if ((c >= 0x600 && c <= 0x6ff) || (c >= 0x750 && c <= 0x77f)) return K.arabic;
  if (c >= 0x900 && c <= 0xdff) return K.indic;
  if (c >= 0xe00 && c <= 0xe7f) return K.thai;
  if (c >= 0x1f00 && c <= 0x1fff) return K.greek;
  if ((c >= 0x1100 && c <= 0x11ff) || (c >= 0xac00 && c <= 0xd7af)) return K.hangul;
  if (c >= 0x3040 && c <= 0x30ff) return K.kana;
  if ((c >= 0x3400 && c <= 0x9fff) || (c >= 0xf900 && c <= 0xfaff)) return K.han;
  return K.otherScript;
}

function isStrongPortugueseAccent(c: number): boolean {
  // ã õ ç â ê ô (either case) are rare outside Portuguese among Latin-script languages.
  const l = c | 0x20;
  return l === 0xe3 || l === 0xf5 || l === 0xe7 || l === 0xe2 || l === 0xea || l === 0xf4;
}

/**
 * Estimates how many tokens Maritaca's tokenizer (sabia-3 / sabia-4) produces for `text`,
 * content only. Errs slightly high: on the bench corpus (bench/fixtures/prompts.jsonl) the
 * per-prompt mean absolute error is about 5% and the total about 1% above the real count.
 * Linear time, no allocations beyond a closure.
 *
 * @example
 * estimateTextTokens('') // => 0
 * estimateTextTokens('Qual é a capital do Paraná?') // => 10 (real: 8)
 */
export function estimateTextTokens(text: string): number {
  const n = text.length;
  if (n === 0) return 0;

  // Tokens that do not depend on language.
  let fixed = 0;
  // Language blend, accumulated per sentence ("chunk"); see flushChunk.
  let blendA = 0;
  let blendB = 0;
  let blendC = 0;
  let chunkPtEvidence = 0;
  let chunkEnEvidence = 0;
  let chunkPtCost = 0;
  let chunkEnCost = 0;
  let ptEvidence = 0;
  let enEvidence = 0;

  // The class of the piece that came just before, to apply the pre-tokenizer's gluing rules.
  let previous = NEWLINE;
  let i = 0;

  const flushChunk = (): void => {
    // Each sentence is Portuguese with probability (ptEv + prior * P) / (evidence + prior),
    // P being the whole text's share, known only at the end: the cost is linear in P, so
    // three running sums are enough and nothing has to be stored per sentence.
    if (chunkPtCost === 0 && chunkEnCost === 0) return;
    const evidence = chunkPtEvidence + chunkEnEvidence;
    const denominator = evidence + K.chunkPrior;
    blendA += (chunkPtEvidence * chunkPtCost + chunkEnEvidence * chunkEnCost) / denominator;
    blendB += (K.chunkPrior * (chunkPtCost - chunkEnCost)) / denominator;
    blendC += (K.chunkPrior * chunkEnCost) / denominator;
    ptEvidence += chunkPtEvidence;
    enEvidence += chunkEnEvidence;
    chunkPtEvidence = chunkEnEvidence = chunkPtCost = chunkEnCost = 0;
  };

  while (i < n) {
    const c = text.charCodeAt(i);
    const cls = classOf(c);

    if (cls === LATIN || cls === MARK) {
      let hash = FNV_OFFSET;
      let letters = 0;
      let uppers = 0;
      let accents = 0;
      let strongAccent = false;
      let caseChanges = 0;
      let lastLower = false;
      let firstUpper = false;
      for (; i < n; i++) {
        const d = text.charCodeAt(i);
        const dc = classOf(d);
        if (dc === MARK) {
          accents++;
          continue;
        }
        if (dc !== LATIN) break;
        hash = hashStep(hash, d);
        const upper = d < 0x80 ? d <= 0x5a : foldCase(d) !== d;
        if (upper) {
          uppers++;
          if (letters === 0) firstUpper = true;
          else if (lastLower) caseChanges++;
        }
        if (d >= 0x80) {
          accents++;
          if (isStrongPortugueseAccent(d)) strongAccent = true;
        }
        lastLower = !upper;
        letters++;
      }
      const allUpper = letters > 1 && uppers === letters;
      const common = allUpper ? 0 : (COMMON_WORDS.get(hash) ?? 0);
      let ptCost: number;
      let enCost: number;
      if (letters === 0) {
        ptCost = enCost = 1; // stray combining marks
      } else if (common !== 0) {
        ptCost = enCost = 1;
        if (common === PT_FLAG) chunkPtEvidence++;
        else if (common === EN_FLAG) chunkEnEvidence++;
      } else if (allUpper) {
        const past = Math.max(0, letters - K.upperFree);
        ptCost = 1 + K.ptUpperSlope * past + K.accent * accents;
        enCost = 1 + K.enUpperSlope * past + K.accent * accents;
      } else {
        const camel = K.camel * caseChanges;
        const cap = firstUpper && uppers === 1;
        const base = Math.max(1, K.ptBase + K.ptSlope * (letters - 4));
        ptCost = base + K.accent * accents + camel + (cap ? K.ptCap : 0);
        enCost =
          1 + K.enSlope * Math.max(0, letters - K.enFree) + K.accent * accents + camel + (cap ? K.enCap : 0);
      }
      if (previous !== SPACE) {
        ptCost += K.noSpace;
        enCost += K.noSpace;
      }
      if (accents > 0) chunkPtEvidence += strongAccent ? 2 * K.accentEvidence : K.accentEvidence;
      chunkPtCost += ptCost;
      chunkEnCost += enCost;
      previous = LATIN;
      continue;
    }

    if (cls === DIGIT) {
      // The pre-tokenizer isolates every digit.
      fixed++;
      i++;
      previous = DIGIT;
      continue;
    }

    if (cls === SPACE || cls === NEWLINE) {
      let spaces = 0; // horizontal whitespace after the last newline
      let newline = false;
      for (; i < n; i++) {
        const dc = classOf(text.charCodeAt(i));
        if (dc === NEWLINE) {
          newline = true;
          spaces = 0;
        } else if (dc === SPACE) spaces++;
        else break;
      }
      if (newline) {
        fixed += previous === PUNCT ? K.newlineAfterPunct : 1;
        flushChunk();
      }
      if (spaces > 0) {
        // One space is carried by a following word or punctuation run; the rest is a token
        // of its own (runs of spaces are in the vocabulary). Before a digit or at the end
        // nothing carries it.
        const nextCls = i < n ? classOf(text.charCodeAt(i)) : 0;
        const carried = nextCls === LATIN || nextCls === SCRIPT || nextCls === PUNCT || nextCls === MARK;
        const alone = carried ? spaces - 1 : spaces;
        if (alone > 0) fixed += Math.ceil(alone / 16);
      }
      previous = newline && spaces === 0 ? NEWLINE : SPACE;
      continue;
    }

    if (cls === SCRIPT) {
      let cost = 0;
      for (; i < n; i++) {
        const d = text.charCodeAt(i);
        const dc = classOf(d);
        if (dc !== SCRIPT && dc !== MARK) break;
        cost += scriptRate(d);
      }
      fixed += Math.max(1, cost);
      previous = SCRIPT;
      continue;
    }

    // Punctuation or symbol run.
    const start = i;
    let ascii = 0;
    let symbols = 0;
    let boundary = false;
    for (; i < n; i++) {
      const d = text.charCodeAt(i);
      if (classOf(d) !== PUNCT) break;
      if (d < 0x80) {
        ascii++;
        // Sentence ends and quotes delimit the stretches whose language is judged together.
        if (d === 0x22 || d === 0x2e || d === 0x21 || d === 0x3f || d === 0x3a || d === 0x3b) boundary = true;
      } else if (d >= 0xd800 && d <= 0xdbff) {
        // A surrogate pair: emoji and other astral symbols; CJK extension planes are letters.
        symbols += d >= 0xd840 && d <= 0xd8bf ? K.han : K.symbol;
        i++;
      } else if (d >= 0xdc00 && d <= 0xdfff) {
        // lone low surrogate: nothing to add
      } else {
        // Any other symbol; emoji variation selectors and joiners count too, as the tokenizer
        // spends a token on them.
        symbols += K.symbol;
        if (d === 0x201c || d === 0x201d || d === 0xab || d === 0xbb) boundary = true;
      }
    }
    const nextIsLetter = i < n && classOf(text.charCodeAt(i)) === LATIN;
    if (i - start === 1 && ascii === 1 && nextIsLetter && previous !== SPACE) {
      // The pre-tokenizer glues one leading character to a word; the pair is often one token.
      fixed += K.glued;
    } else {
      fixed += (ascii > 0 ? 1 + K.punctSlope * Math.max(0, ascii - K.punctFree) : 0) + symbols;
    }
    if (boundary) flushChunk();
    previous = PUNCT;
  }
  flushChunk();

  const ptShare = (ptEvidence + K.priorPt) / (ptEvidence + enEvidence + K.priorPt + K.priorEn);
  const estimate = fixed + blendA + ptShare * blendB + blendC;
  return Math.max(1, Math.floor(estimate * K.scale + K.roundUp));
}

/**
 * Estimates the prompt tokens Maritaca bills for a chat request: each message's content plus
 * {@link MESSAGE_OVERHEAD_TOKENS} for its role and delimiters, plus
 * {@link REQUEST_OVERHEAD_TOKENS} once for the request. With a `model` that has Maritaca's own
 * tokenizer, the content is counted exactly; otherwise (or without a model) by the heuristic.
 *
 * @example
 * estimateMessageTokens([]) // => 0
 * estimateMessageTokens([{ role: 'user', content: 'Olá!' }]) // => 3 + 5 + 3 (heuristic)
 * estimateMessageTokens([{ role: 'user', content: 'Olá!' }], 'sabia-4') // content counted exactly
 */
export function estimateMessageTokens(messages: readonly ChatMessage[], model?: string): number {
  if (messages.length === 0) return 0;
  const exact = model !== undefined && hasExactTokenizer(model);
  let total = REQUEST_OVERHEAD_TOKENS;
  for (const message of messages) {
    total += MESSAGE_OVERHEAD_TOKENS;
    for (const text of textsOf(message))
      total += exact ? countTokens(text, model)! : estimateTextTokens(text);
  }
  return total;
}

/**
 * Tokens of `texts` as Maritaca's tokenizer for `model` counts them (no template), or null when
 * the model has no known tokenizer.
 */
export function exactTokens(texts: readonly string[], model: string): number | null {
  if (!hasExactTokenizer(model)) return null;
  let total = 0;
  for (const text of texts) if (text) total += countTokens(text, model)!;
  return total;
}
