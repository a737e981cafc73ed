import type * as TiktokenLite from 'tiktoken/lite';
import { tokenizerFamilyOf, type TokenizerFamily } from './families';
import { JS_SPLIT_PATTERN, MARITALK_SPLIT_PATTERN } from './split-pattern';
import {
  DEFAULT_TOKENIZER_DATA_DIR,
  readManifest,
  readVocabulary,
  type TokenizerManifest,
} from './vocabulary';

// Natural text repeats the same few thousand pieces (words with their leading space, digits,
// punctuation), so counting each distinct piece once makes BPE cost vanish. Long pieces are rare
// and would only crowd the cache; clearing it when full is enough for Zipf-shaped text.
const MAX_CACHED_PIECE_LENGTH = 48;
const MAX_CACHED_PIECES = 100_000;

/**
 * One loaded vocabulary. BPE runs in tiktoken's WASM build, the same Rust code that `maritalk`
 * runs through Python's tiktoken, so merges agree by construction. Splitting runs in V8's regex
 * engine instead, because the WASM one is several times slower on this pattern; each piece is a
 * fixed point of the pattern, so BPE of a piece alone equals its share of the whole text.
 */
class Encoding {
  private readonly pieceCounts = new Map<string, number>();

  constructor(
    private readonly bpe: TiktokenLite.Tiktoken,
    // Undefined when the manifest's pattern is not the one JS_SPLIT_PATTERN translates: counts
    // then go through tiktoken's own splitting, slower but still exact.
    private readonly split: RegExp | undefined,
  ) {}

  count(text: string): number {
    const normalized = text.normalize('NFC');
    const split = this.split;
    if (!split) return this.bpe.encode_ordinary(normalized).length;
    let total = 0;
    split.lastIndex = 0;
    for (let match = split.exec(normalized); match !== null; match = split.exec(normalized)) {
      const piece = match[0];
      if (piece.length > MAX_CACHED_PIECE_LENGTH) {
        total += this.bpe.encode_ordinary(piece).length;
        continue;
      }
      let count = this.pieceCounts.get(piece);
      if (count === undefined) {
        count = this.bpe.encode_ordinary(piece).length;
        if (this.pieceCounts.size >= MAX_CACHED_PIECES) this.pieceCounts.clear();
        this.pieceCounts.set(piece, count);
      }
      total += count;
    }
    return total;
  }
}

/** Options of {@link MaritacaTokenizer}. */
export interface MaritacaTokenizerOptions {
  /** Folder holding `manifest.json` and the vocabularies; defaults to the package's `data/tokenizer/`. */
  dataDir?: string;
}

/**
 * Counts tokens exactly as `maritalk.count_tokens` does, with Maritaca's own vocabularies.
 *
 * Nothing is read until the first count for a family; each vocabulary then stays loaded for the
 * life of the instance (half a second to a second, and about 70 MB, once; families that share a
 * vocabulary share it). Most callers want the module-level {@link countTokens}, which uses one
 * shared instance.
 *
 * @example
 * const tokenizer = new MaritacaTokenizer();
 * tokenizer.countTokens('Olá, mundo!', 'sabia-4'); // 5
 * tokenizer.countTokens('Olá, mundo!', 'gpt-4o'); // undefined: no Maritaca tokenizer
 */
export class MaritacaTokenizer {
  private readonly dataDir: string;
  private manifest: TokenizerManifest | undefined;
  private readonly byFamily = new Map<TokenizerFamily, Encoding>();
  private readonly byFile = new Map<string, Encoding>();

  constructor(options: MaritacaTokenizerOptions = {}) {
    this.dataDir = options.dataDir ?? DEFAULT_TOKENIZER_DATA_DIR;
  }

  /**
   * Tokens in `text` under `model`'s tokenizer, after NFC normalisation; `undefined` when no
   * tokenizer ships for the model (see {@link tokenizerFamilyOf}). Chat-template tokens around a
   * message are not included: Maritaca does not publish its template.
   */
  countTokens(text: string, model: string): number | undefined {
    const family = tokenizerFamilyOf(model);
    return family === undefined ? undefined : this.countFamilyTokens(text, family);
  }

  /** Tokens in `text` under a family's tokenizer, after NFC normalisation. */
  countFamilyTokens(text: string, family: TokenizerFamily): number {
    return this.encoding(family).count(text);
  }

  /** Whether the family's vocabulary has been loaded by an earlier count. */
  isLoaded(family: TokenizerFamily): boolean {
    return this.byFamily.has(family);
  }

  private encoding(family: TokenizerFamily): Encoding {
    const loaded = this.byFamily.get(family);
    if (loaded) return loaded;
    const manifest = (this.manifest ??= readManifest(this.dataDir));
    const entry = manifest.encodings[family];
    let encoding = this.byFile.get(entry.file);
    if (!encoding) {
      // Required here, not imported at the top, so that importing this module costs nothing:
      // the WASM module is compiled only when a count first needs it.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { Tiktoken } = require('tiktoken/lite') as typeof TiktokenLite;
      const bpe = new Tiktoken(readVocabulary(this.dataDir, entry), manifest.specialTokens, manifest.pattern);
      const split =
        manifest.pattern === MARITALK_SPLIT_PATTERN ? new RegExp(JS_SPLIT_PATTERN, 'gu') : undefined;
      encoding = new Encoding(bpe, split);
      this.byFile.set(entry.file, encoding);
    }
    this.byFamily.set(family, encoding);
    return encoding;
  }
}

const shared = new MaritacaTokenizer();

/**
 * Tokens in `text` under `model`'s Maritaca tokenizer, exactly as `maritalk.count_tokens(text,
 * model=...)` counts them; `undefined` for a model with no known tokenizer (estimate those
 * another way and say so). Loads the family's vocabulary on first use.
 *
 * @example
 * countTokens('Quantas calorias tem uma banana média?', 'sabiazinho-4'); // 10
 * countTokens('Hello', 'sabia-2-small'); // undefined
 */
export function countTokens(text: string, model: string): number | undefined {
  return shared.countTokens(text, model);
}
