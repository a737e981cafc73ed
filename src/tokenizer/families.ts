/**
 * A Maritaca tokenizer, named as `maritalk` names its encoders: `sabia-3` for the legacy models,
 * `sabia-4` for the current ones.
 */
export type TokenizerFamily = 'sabia-3' | 'sabia-4';

/** Every family whose vocabulary ships in `data/tokenizer/`. */
export const TOKENIZER_FAMILIES: readonly TokenizerFamily[] = ['sabia-3', 'sabia-4'];

// The same prefixes, in the same order, as `maritalk.count_tokens` (0.3.2) tests them, so a model
// name maps here exactly as it does there (including its `sabiazim-4` spelling and case
// sensitivity). The sabia-2 models are left out on purpose: maritalk counts them with
// Hugging Face tokenizers that it downloads at run time, which this package does not ship.
const PREFIXES: readonly (readonly [prefix: string, family: TokenizerFamily])[] = [
  ['sabia-4', 'sabia-4'],
  ['sabiazinho-4', 'sabia-4'],
  ['sabiazim-4', 'sabia-4'],
  ['sabia-3', 'sabia-3'],
  ['sabiazinho-3', 'sabia-3'],
];

/**
 * The tokenizer family that counts a model's tokens, or `undefined` when none ships for it.
 *
 * @example
 * tokenizerFamilyOf('sabiazinho-4-br-sp'); // 'sabia-4'
 * tokenizerFamilyOf('sabia-3.1'); // 'sabia-3'
 * tokenizerFamilyOf('gpt-4o'); // undefined
 */
export function tokenizerFamilyOf(model: string): TokenizerFamily | undefined {
  for (const [prefix, family] of PREFIXES) if (model.startsWith(prefix)) return family;
  return undefined;
}

/** Whether {@link tokenizerFamilyOf} knows the model, i.e. its tokens can be counted exactly. */
export function hasExactTokenizer(model: string): boolean {
  return tokenizerFamilyOf(model) !== undefined;
}
