import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { TOKENIZER_FAMILIES, type TokenizerFamily } from './families';

/**
 * Where the vocabularies ship: `data/tokenizer/` at the package root, two levels above this file
 * both in `src/tokenizer/` (tests) and in `lib/tokenizer/` (the published build).
 */
export const DEFAULT_TOKENIZER_DATA_DIR = path.join(__dirname, '..', '..', 'data', 'tokenizer');

/** One family's entry in `manifest.json`. */
export interface VocabularyEntry {
  /** File name in the data folder: gzip, one base64 token per line, rank = line index. */
  file: string;
  /** Number of tokens (lines). */
  tokens: number;
  /** SHA-256 of the decompressed file. */
  sha256: string;
}

/** `data/tokenizer/manifest.json`, as scripts/extract-maritaca-ranks.py writes it. */
export interface TokenizerManifest {
  source: { package: string; version: string; wheel: string; wheelSha256: string };
  normalization: 'NFC';
  /** The split pattern, verbatim from `maritalk` (Rust regex flavour). */
  pattern: string;
  specialTokens: Record<string, number>;
  encodings: Record<TokenizerFamily, VocabularyEntry>;
}

/** Reads and checks the manifest of a tokenizer data folder. */
export function readManifest(dataDir: string): TokenizerManifest {
  const file = path.join(dataDir, 'manifest.json');
  let manifest: TokenizerManifest;
  try {
    manifest = JSON.parse(readFileSync(file, 'utf8')) as TokenizerManifest;
  } catch (err) {
    throw new Error(
      `Cannot read the Maritaca tokenizer manifest ${file} (${(err as Error).message}). ` +
        'The package ships it in data/tokenizer/; in a checkout, `npm run tokenizer:ranks` rebuilds it.',
    );
  }
  // Anything else would count differently from maritalk without saying so.
  if (manifest.normalization !== 'NFC' || typeof manifest.pattern !== 'string')
    throw new Error(`${file}: unsupported normalization or pattern`);
  for (const family of TOKENIZER_FAMILIES) {
    const entry = manifest.encodings?.[family];
    if (!entry || typeof entry.file !== 'string' || path.basename(entry.file) !== entry.file)
      throw new Error(`${file}: no valid vocabulary entry for ${family}`);
  }
  return manifest;
}

/**
 * A vocabulary in the text form tiktoken's constructor takes (`<base64 token> <rank>` lines),
 * after checking it against the manifest's token count and checksum.
 */
export function readVocabulary(dataDir: string, entry: VocabularyEntry): string {
  const file = path.join(dataDir, entry.file);
  const text = gunzipSync(readFileSync(file)).toString('latin1');
  const digest = createHash('sha256').update(text, 'latin1').digest('hex');
  if (digest !== entry.sha256)
    throw new Error(
      `${file} does not match its manifest checksum: reinstall the package or rebuild the data`,
    );
  const tokens = text.split('\n');
  if (tokens[tokens.length - 1] === '') tokens.pop();
  if (tokens.length !== entry.tokens)
    throw new Error(`${file} holds ${tokens.length} tokens where the manifest says ${entry.tokens}`);
  const lines = new Array<string>(tokens.length);
  for (let rank = 0; rank < tokens.length; rank++) lines[rank] = `${tokens[rank]} ${rank}`;
  return lines.join('\n');
}
