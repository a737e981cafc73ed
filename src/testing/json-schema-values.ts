/**
 * Deterministic values that satisfy a JSON schema, and deliberately broken ones, for the fake
 * Maritaca server's structured answers (forced tool calls and `json_schema` formats). Pure and
 * dependency-free: the fake must stay light, and a validator belongs to the tests that check it.
 */

type Json = Record<string, unknown>;

/** How deep the generator follows nested schemas before giving up on a branch (with `null`). */
const MAX_DEPTH = 32;

/** Values for the string formats clients ask for most; each satisfies ajv-formats' check. */
const FORMAT_EXAMPLES: Readonly<Record<string, string>> = {
  date: '2024-01-15',
  'date-time': '2024-01-15T12:00:00Z',
  time: '12:00:00Z',
  email: 'usuario@example.com',
  'idn-email': 'usuario@example.com',
  uri: 'https://example.com/',
  'uri-reference': 'https://example.com/',
  iri: 'https://example.com/',
  url: 'https://example.com/',
  uuid: '123e4567-e89b-42d3-a456-426614174000',
  hostname: 'example.com',
  ipv4: '192.0.2.1',
  ipv6: '2001:db8::1',
  duration: 'P1D',
};

const BASE_TEXT = 'exemplo';

/** How the fake makes a structured answer wrong, so a client's check and re-ask are exercised. */
export type InvalidJsonAnswerKind = 'missing_required' | 'wrong_type' | 'not_json';

/** A structured answer made wrong on purpose: its text and the way it is wrong. */
export interface InvalidJsonAnswer {
  readonly kind: InvalidJsonAnswerKind;
  /** The answer's text: JSON that breaks the schema, or text that is not JSON at all. */
  readonly text: string;
}

interface Context {
  readonly root: unknown;
  readonly depth: number;
}

/**
 * A value that satisfies `schema`, the same for the same schema every time: the fake's forced
 * tool calls carry it as `arguments` and its `json_schema` answers as `content`.
 *
 * Covered: boolean schemas; `type` (one or a list: the first non-`null` one wins) and, without
 * it, a type inferred from the keywords present; `const`; `enum` (its first member); objects
 * with their `required` properties only (optional ones are left out, which also keeps recursive
 * schemas finite), topped up from `properties` to `minProperties`; arrays of `max(minItems, 1)`
 * items (none when `maxItems` is 0) from `items`, `prefixItems` or a draft-07 tuple `items`,
 * varied per position so `uniqueItems` holds for strings, numbers, enums and objects of them; strings of
 * `minLength`..`maxLength` with `format` `date`, `date-time`, `time`, `email`, `uri`, `uuid`,
 * `hostname`, `ipv4`, `ipv6`, `duration`; numbers and integers within `minimum`, `maximum` and
 * their exclusive forms (draft-04 booleans too), `multipleOf` for whole multiples; `null`;
 * local `$ref`s (`#`, `#/$defs/...`, `#/definitions/...`); `allOf` (merged); `anyOf` and `oneOf`
 * (the first branch that is not `null`).
 *
 * Not covered (the value may then fail the schema): `pattern`, `patternProperties`, `not`,
 * `if`/`then`/`else`, `contains`, `dependentRequired`/`dependentSchemas`, `propertyNames`,
 * remote `$ref`s, fractional `multipleOf`, `oneOf` branches that overlap, `uniqueItems` over
 * more than two booleans, and required properties that recurse forever (cut at depth 32 with `null`).
 *
 * @example
 * exampleOfJsonSchema({
 *   type: 'object',
 *   required: ['city', 'days'],
 *   properties: { city: { type: 'string' }, days: { type: 'integer', minimum: 1 }, note: { type: 'string' } },
 * }); // { city: 'exemplo', days: 1 }
 */
export function exampleOfJsonSchema(schema: unknown): unknown {
  return generate(schema, { root: schema, depth: 0 }, 0);
}

/**
 * A wrong answer for `schema`, built from `valid` (a value satisfying it): `choice` in [0, 1)
 * picks among the ways that are sure to break this schema, so a seeded draw gives every kind
 * its share. `missing_required` drops the first required property of the root object;
 * `wrong_type` gives a property (a required one first) or, failing that, the root a value of a
 * type the schema does not take; `not_json` wraps the JSON in prose. A root `anyOf`/`oneOf` or a
 * schema that takes anything leaves only `not_json`, the one kind certain to fail there.
 *
 * @example
 * invalidJsonAnswer({ type: 'object' }, {}, 0).kind; // 'wrong_type' (a JSON string, not an object)
 */
export function invalidJsonAnswer(schema: unknown, valid: unknown, choice: number): InvalidJsonAnswer {
  const text = JSON.stringify(valid);
  const candidates: InvalidJsonAnswer[] = [];
  const root = resolve(schema, { root: schema, depth: 0 });
  const branching = isObject(root) && (Array.isArray(root.anyOf) || Array.isArray(root.oneOf));
  if (isObject(root) && !branching) {
    const required = requiredOf(root);
    if (required.length > 0 && isObject(valid) && !Array.isArray(valid)) {
      const copy: Json = { ...valid };
      delete copy[required[0] as string];
      candidates.push({ kind: 'missing_required', text: JSON.stringify(copy) });
    }
    const wrong = wrongTypeValue(root, valid, schema);
    if (wrong !== undefined) candidates.push({ kind: 'wrong_type', text: JSON.stringify(wrong) });
  }
  // Prose around (half of) the JSON: what a model that "explains" its answer sends.
  const half = text.slice(0, Math.max(1, Math.ceil(text.length / 2)));
  candidates.push({ kind: 'not_json', text: `Claro! Aqui está o JSON pedido: ${half}` });
  const index = Math.min(candidates.length - 1, Math.max(0, Math.floor(choice * candidates.length)));
  return candidates[index] as InvalidJsonAnswer;
}

/**
 * A copy through JSON rather than `structuredClone`: schemas come from JSON, and a clone made in
 * another realm (a test runner's sandbox) would not deep-equal its original under a validator.
 */
function copyJson(value: unknown): unknown {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function requiredOf(schema: Json): string[] {
  return Array.isArray(schema.required)
    ? schema.required.filter((key): key is string => typeof key === 'string')
    : [];
}

/** Follows a local JSON pointer (`#`, `#/$defs/name`); anything else resolves to no constraint. */
function dereference(ref: string, root: unknown): unknown {
  if (ref === '#') return root;
  if (!ref.startsWith('#/')) return {};
  let node: unknown = root;
  for (const raw of ref.slice(2).split('/')) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (!isObject(node) && !Array.isArray(node)) return {};
    node = (node as Json)[key];
  }
  return node ?? {};
}

/**
 * The schema with its `$ref` followed and its `allOf` merged in, so the rest of the generator
 * sees plain keywords. Booleans pass through.
 */
function resolve(schema: unknown, context: Context): unknown {
  let current = schema;
  for (let hops = 0; hops < MAX_DEPTH && isObject(current) && typeof current.$ref === 'string'; hops++) {
    const { $ref, ...siblings } = current;
    const target = dereference($ref as string, context.root);
    current = isObject(target)
      ? mergeSchemas(target, siblings)
      : Object.keys(siblings).length
        ? siblings
        : target;
  }
  if (isObject(current) && Array.isArray(current.allOf)) {
    const { allOf, ...rest } = current;
    let merged: Json = rest;
    for (const part of allOf as unknown[]) {
      const resolved = resolve(part, context);
      if (isObject(resolved)) merged = mergeSchemas(merged, resolved);
    }
    current = merged;
  }
  return current;
}

/**
 * Both schemas at once, as far as the generator cares: properties merged one by one, required
 * lists joined, the tighter of two bounds, the common types and enum members.
 */
function mergeSchemas(a: Json, b: Json): Json {
  const merged: Json = { ...a, ...b };
  if (isObject(a.properties) && isObject(b.properties)) {
    const properties: Json = { ...a.properties };
    for (const [key, value] of Object.entries(b.properties)) {
      const existing = properties[key];
      properties[key] = isObject(existing) && isObject(value) ? mergeSchemas(existing, value) : value;
    }
    merged.properties = properties;
  }
  if (Array.isArray(a.required) || Array.isArray(b.required)) {
    merged.required = [...new Set([...requiredOf(a), ...requiredOf(b)])];
  }
  for (const key of ['minimum', 'exclusiveMinimum', 'minLength', 'minItems', 'minProperties'] as const) {
    if (isNumber(a[key]) && isNumber(b[key])) merged[key] = Math.max(a[key], b[key]);
  }
  for (const key of ['maximum', 'exclusiveMaximum', 'maxLength', 'maxItems', 'maxProperties'] as const) {
    if (isNumber(a[key]) && isNumber(b[key])) merged[key] = Math.min(a[key], b[key]);
  }
  if (a.type !== undefined && b.type !== undefined) {
    const typesOfB = typesIn(b.type);
    const common = typesIn(a.type).filter(
      (type) => typesOfB.includes(type) || (type === 'integer' && typesOfB.includes('number')),
    );
    if (common.length > 0) merged.type = common;
  }
  if (Array.isArray(a.enum) && Array.isArray(b.enum)) {
    const inB = new Set((b.enum as unknown[]).map((member) => JSON.stringify(member)));
    merged.enum = (a.enum as unknown[]).filter((member) => inB.has(JSON.stringify(member)));
  }
  return merged;
}

function typesIn(type: unknown): string[] {
  if (typeof type === 'string') return [type];
  return Array.isArray(type) ? type.filter((t): t is string => typeof t === 'string') : [];
}

/** The type to build when the schema names none: the one its keywords describe. */
function inferredType(schema: Json): string {
  const types = typesIn(schema.type);
  if (types.length > 0) return types.find((type) => type !== 'null') ?? 'null';
  if ('properties' in schema || 'required' in schema || 'additionalProperties' in schema) return 'object';
  if ('items' in schema || 'prefixItems' in schema || 'minItems' in schema) return 'array';
  if ('minimum' in schema || 'maximum' in schema || 'multipleOf' in schema) return 'number';
  if ('exclusiveMinimum' in schema || 'exclusiveMaximum' in schema) return 'number';
  // A string also satisfies a schema without constraints.
  return 'string';
}

function generate(schema: unknown, context: Context, variant: number): unknown {
  if (context.depth > MAX_DEPTH) return null;
  const resolved = resolve(schema, context);
  if (!isObject(resolved)) return resolved === false ? null : BASE_TEXT;
  if ('const' in resolved) return copyJson(resolved.const);
  if (Array.isArray(resolved.enum) && resolved.enum.length > 0) {
    return copyJson(resolved.enum[variant % resolved.enum.length]);
  }
  const branches = Array.isArray(resolved.anyOf) ? resolved.anyOf : resolved.oneOf;
  if (Array.isArray(branches) && branches.length > 0) {
    const { anyOf: _anyOf, oneOf: _oneOf, ...siblings } = resolved;
    const chosen =
      branches.find((branch) => {
        const b = resolve(branch, context);
        return !(
          isObject(b) &&
          (b.type === 'null' || (Array.isArray(b.enum) && b.enum.every((m) => m === null)))
        );
      }) ?? branches[0];
    const branch = resolve(chosen, context);
    return generate(isObject(branch) ? mergeSchemas(siblings, branch) : branch, context, variant);
  }
  const deeper: Context = { root: context.root, depth: context.depth + 1 };
  switch (inferredType(resolved)) {
    case 'object':
      return objectOf(resolved, deeper, variant);
    case 'array':
      return arrayOf(resolved, deeper);
    case 'integer':
      return integerOf(resolved, variant);
    case 'number':
      return numberOf(resolved, variant);
    case 'boolean':
      return variant % 2 === 0;
    case 'null':
      return null;
    default:
      return stringOf(resolved, variant);
  }
}

/** The object's properties take its variant, so list items that are objects differ too. */
function objectOf(schema: Json, context: Context, variant: number): Json {
  const properties = isObject(schema.properties) ? schema.properties : {};
  const additional = schema.additionalProperties;
  const value: Json = {};
  const add = (key: string): void => {
    // A required key with no schema of its own follows additionalProperties, when that is a schema.
    const propertySchema = key in properties ? properties[key] : isObject(additional) ? additional : {};
    value[key] = generate(propertySchema, context, variant);
  };
  for (const key of requiredOf(schema)) add(key);
  const minProperties = isNumber(schema.minProperties) ? schema.minProperties : 0;
  for (const key of Object.keys(properties)) {
    if (Object.keys(value).length >= minProperties) break;
    if (!(key in value)) add(key);
  }
  for (let extra = 1; Object.keys(value).length < minProperties && additional !== false; extra++) {
    if (!(`extra_${extra}` in value)) add(`extra_${extra}`);
  }
  return value;
}

function arrayOf(schema: Json, context: Context): unknown[] {
  const prefix = Array.isArray(schema.prefixItems)
    ? schema.prefixItems
    : Array.isArray(schema.items)
      ? schema.items
      : [];
  // After a draft-07 tuple, additionalItems describes the rest; in 2020-12, items does.
  const rest = Array.isArray(schema.items) ? (schema.additionalItems ?? {}) : (schema.items ?? {});
  const minItems = isNumber(schema.minItems) ? schema.minItems : 0;
  let length = Math.max(minItems, prefix.length, 1);
  if (isNumber(schema.maxItems)) length = Math.min(length, schema.maxItems);
  if (rest === false) length = Math.min(length, prefix.length);
  const items: unknown[] = [];
  for (let i = 0; i < length; i++) items.push(generate(i < prefix.length ? prefix[i] : rest, context, i));
  return items;
}

function stringOf(schema: Json, variant: number): string {
  const format = typeof schema.format === 'string' ? FORMAT_EXAMPLES[schema.format] : undefined;
  let text = format ?? (variant === 0 ? BASE_TEXT : `${BASE_TEXT} ${variant + 1}`);
  const minLength = isNumber(schema.minLength) ? schema.minLength : 0;
  // Only plain text is padded or cut: a formatted value of another length would break its format.
  if (format === undefined) {
    if (text.length < minLength) text += 'x'.repeat(minLength - text.length);
    if (isNumber(schema.maxLength) && text.length > schema.maxLength) {
      text = text.slice(0, Math.max(0, schema.maxLength));
      // Cutting may merge list items into one value: keep them apart with a trailing digit.
      if (variant > 0 && text.length > 0) text = text.slice(0, -1) + String(variant % 10);
    }
  }
  return text;
}

/** Lowest and highest values allowed, with exclusive bounds of either draft's form. */
function boundsOf(schema: Json): {
  low?: number;
  lowExclusive: boolean;
  high?: number;
  highExclusive: boolean;
} {
  let low = isNumber(schema.minimum) ? schema.minimum : undefined;
  let high = isNumber(schema.maximum) ? schema.maximum : undefined;
  let lowExclusive = schema.exclusiveMinimum === true;
  let highExclusive = schema.exclusiveMaximum === true;
  if (isNumber(schema.exclusiveMinimum) && (low === undefined || schema.exclusiveMinimum >= low)) {
    low = schema.exclusiveMinimum;
    lowExclusive = true;
  }
  if (isNumber(schema.exclusiveMaximum) && (high === undefined || schema.exclusiveMaximum <= high)) {
    high = schema.exclusiveMaximum;
    highExclusive = true;
  }
  return { low, lowExclusive, high, highExclusive };
}

function integerOf(schema: Json, variant: number): number {
  const bounds = boundsOf(schema);
  const low =
    bounds.low === undefined
      ? undefined
      : bounds.lowExclusive
        ? Math.floor(bounds.low) + 1
        : Math.ceil(bounds.low);
  const high =
    bounds.high === undefined
      ? undefined
      : bounds.highExclusive
        ? Math.ceil(bounds.high) - 1
        : Math.floor(bounds.high);
  let value = (low ?? (high !== undefined ? Math.min(high, 1) : 1)) + variant;
  // Past the top, list items cycle through the allowed range (repeating only when it is too small).
  if (high !== undefined && value > high)
    value = low !== undefined ? low + (variant % (high - low + 1)) : high - variant;
  const step = schema.multipleOf;
  if (isNumber(step) && step > 0 && Number.isInteger(step)) {
    const up = Math.ceil(value / step) * step;
    value = high !== undefined && up > high ? Math.floor(high / step) * step : up;
  }
  return value;
}

function numberOf(schema: Json, variant: number): number {
  const step = schema.multipleOf;
  // Whole multiples are integers; the integer path already handles them within the bounds.
  if (isNumber(step) && step > 0 && Number.isInteger(step)) return integerOf(schema, variant);
  const { low, lowExclusive, high, highExclusive } = boundsOf(schema);
  if (low !== undefined && high !== undefined) {
    // Spread list items over the open interval, which excludes both ends whatever their kind.
    return low + ((high - low) * (variant + 1)) / (variant + 2);
  }
  if (low !== undefined) return low + (lowExclusive ? 0.5 : 0) + variant;
  if (high !== undefined) return high - (highExclusive ? 0.5 : 0) - variant;
  return 1.5 + variant;
}

/** JSON types a (resolved) schema takes, or undefined when it takes any type. */
function acceptedTypes(schema: unknown, context: Context): Set<string> | undefined {
  const resolved = resolve(schema, context);
  if (!isObject(resolved)) return resolved === false ? new Set() : undefined;
  const branches = Array.isArray(resolved.anyOf) ? resolved.anyOf : resolved.oneOf;
  if (Array.isArray(branches)) {
    const union = new Set<string>();
    for (const branch of branches) {
      const types = acceptedTypes(branch, context);
      if (types === undefined) return undefined;
      for (const type of types) union.add(type);
    }
    return union;
  }
  const types = typesIn(resolved.type);
  if (types.length === 0) return undefined;
  return new Set(types);
}

/** Values of each JSON type; 1.5 is a number but not an integer. */
const WRONG_CANDIDATES: readonly { type: string; value: unknown }[] = [
  { type: 'string', value: 'valor inválido' },
  { type: 'number', value: 1.5 },
  { type: 'boolean', value: true },
  { type: 'null', value: null },
  { type: 'object', value: { invalido: true } },
  { type: 'array', value: ['invalido'] },
];

/** A value `schema` refuses by its type or its enum, or undefined when no such value is sure. */
function refusedValue(schema: unknown, context: Context): unknown {
  const resolved = resolve(schema, context);
  if (isObject(resolved)) {
    const members = Array.isArray(resolved.enum)
      ? resolved.enum
      : 'const' in resolved
        ? [resolved.const]
        : undefined;
    if (members) {
      const taken = new Set(members.map((member) => JSON.stringify(member)));
      const outside = WRONG_CANDIDATES.find((candidate) => !taken.has(JSON.stringify(candidate.value)));
      if (outside) return outside.value;
    }
  }
  const types = acceptedTypes(schema, context);
  if (types === undefined) return undefined;
  return WRONG_CANDIDATES.find((candidate) => !types.has(candidate.type))?.value;
}

/** `valid` with one property (required ones first), or else the whole value, of a refused type. */
function wrongTypeValue(root: Json, valid: unknown, rootSchema: unknown): unknown {
  const context: Context = { root: rootSchema, depth: 0 };
  const properties = isObject(root.properties) ? root.properties : {};
  if (isObject(valid)) {
    const keys = [...requiredOf(root).filter((key) => key in properties), ...Object.keys(properties)];
    for (const key of keys) {
      const wrong = refusedValue(properties[key], context);
      if (wrong !== undefined) return { ...valid, [key]: wrong };
    }
  }
  return refusedValue(root, context);
}
