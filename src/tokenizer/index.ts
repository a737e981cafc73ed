/**
 * Exact prompt-token counts with Maritaca's own tokenizers (Node side only: it reads the
 * vocabularies in `data/tokenizer/` and loads a WASM module on first use).
 */
export { hasExactTokenizer, tokenizerFamilyOf, TOKENIZER_FAMILIES, type TokenizerFamily } from './families';
export { countTokens, MaritacaTokenizer, type MaritacaTokenizerOptions } from './maritaca-tokenizer';
