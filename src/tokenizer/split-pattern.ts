/**
 * The pre-tokenizer pattern `maritalk` (0.3.2) gives tiktoken for both families, verbatim: text
 * is cut into these pieces first and BPE merges never cross them. It is the pattern the shipped
 * manifest must carry for {@link JS_SPLIT_PATTERN} to be a faithful stand-in.
 */
export const MARITALK_SPLIT_PATTERN = String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;

// Unicode White_Space, which `\s` means in the Rust regex engine tiktoken uses. JavaScript's `\s`
// differs: it adds U+FEFF and lacks U+0085, so neither may be used here.
const WS = String.raw`\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000`;

/**
 * {@link MARITALK_SPLIT_PATTERN} in JavaScript's flavour (flags `gu`), cutting every text into the
 * same pieces. Two constructs had to change:
 * - `(?i:...)` is not supported by the V8 of Node 20, so the contractions spell out both cases.
 *   Rust matches them with Unicode simple case folding, under which `s` also matches `ſ` (U+017F);
 *   no other letter of these contractions has a third form.
 * - `\s` and `\S` become the explicit White_Space class above.
 * `\p{L}` and `\p{N}` mean the same general categories in both engines. The tokenizer test holds
 * the two patterns to the same pieces on generated texts and on every BMP code point in letter,
 * digit, space and apostrophe contexts, and to maritalk's counts.
 */
export const JS_SPLIT_PATTERN =
  String.raw`'(?:[sSſ]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])` +
  String.raw`|[^\r\n\p{L}\p{N}]?\p{L}+` +
  String.raw`|\p{N}` +
  String.raw`| ?[^${WS}\p{L}\p{N}]+[\r\n]*` +
  String.raw`|[${WS}]*[\r\n]+` +
  String.raw`|[${WS}]+(?![^${WS}])` +
  String.raw`|[${WS}]+`;
