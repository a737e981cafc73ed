import Ajv, { type ValidateFunction } from 'ajv';
import Ajv2020 from 'ajv/dist/2020';
import fc from 'fast-check';
import { exampleOfJsonSchema, invalidJsonAnswer } from '../../src/testing/json-schema-values';

/**
 * The formats the generator fills, checked by shape: ajv-formats is not a dependency, and these
 * patterns are what a reader would accept for each.
 */
const FORMATS: Record<string, RegExp> = {
  date: /^\d{4}-\d{2}-\d{2}$/,
  'date-time': /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/,
  time: /^\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})?$/,
  email: /^[^\s@]+@[^\s@]+\.[^\s@]+$/,
  uri: /^[a-z][a-z0-9+.-]*:\/\/\S+$/i,
  uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
  ipv4: /^(\d{1,3}\.){3}\d{1,3}$/,
};

function withFormats<T extends Ajv>(ajv: T): T {
  for (const [name, pattern] of Object.entries(FORMATS)) ajv.addFormat(name, pattern);
  return ajv;
}

// Not strict: these are schemas as clients write them (an allOf part without its own type, a
// tuple without maxItems), which strict mode would lint rather than check values against.
const ajv07 = withFormats(new Ajv({ allErrors: true, strict: false }));
const ajv2020 = withFormats(new Ajv2020({ allErrors: true, strict: false }));

function validatorOf(schema: object, draft: '07' | '2020' = '2020'): ValidateFunction {
  return (draft === '07' ? ajv07 : ajv2020).compile(schema);
}

const person = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 12 },
    age: { type: 'integer', minimum: 18, maximum: 130 },
    email: { type: 'string', format: 'email' },
    birthday: { type: 'string', format: 'date' },
    seen: { type: 'string', format: 'date-time' },
    nickname: { type: 'string' },
  },
  required: ['name', 'age', 'email', 'birthday', 'seen'],
  additionalProperties: false,
};

// Every row names its draft: jest reads a test function with more parameters than the row has
// values as one that takes a `done` callback.
const SCHEMAS: [string, object, '07' | '2020'][] = [
  ['a flat object with formats and bounds', person, '2020'],
  [
    'nested objects and arrays with minItems and uniqueItems',
    {
      type: 'object',
      required: ['order'],
      properties: {
        order: {
          type: 'object',
          required: ['id', 'items', 'status', 'paid'],
          properties: {
            id: { type: 'string', format: 'uuid' },
            status: { enum: ['aberto', 'pago', 'enviado'] },
            paid: { type: 'boolean' },
            items: {
              type: 'array',
              minItems: 3,
              uniqueItems: true,
              items: {
                type: 'object',
                required: ['sku', 'quantity', 'price'],
                properties: {
                  sku: { type: 'string', maxLength: 4 },
                  quantity: { type: 'integer', exclusiveMinimum: 0, multipleOf: 5 },
                  price: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
                },
              },
            },
            tags: { type: 'array', items: { type: 'string' }, uniqueItems: true, minItems: 4 },
          },
        },
      },
    },
    '2020',
  ],
  [
    'const, null, nullable types and a type list',
    {
      type: 'object',
      required: ['kind', 'nothing', 'maybe', 'either'],
      properties: {
        kind: { const: 'resposta' },
        nothing: { type: 'null' },
        maybe: { anyOf: [{ type: 'null' }, { type: 'integer', maximum: -10 }] },
        either: { type: ['null', 'number'], minimum: 2.5 },
      },
    },
    '2020',
  ],
  [
    '$defs and $ref, recursion through an optional property',
    {
      $defs: {
        node: {
          type: 'object',
          required: ['label'],
          properties: {
            label: { type: 'string' },
            children: { type: 'array', items: { $ref: '#/$defs/node' } },
          },
        },
      },
      type: 'object',
      required: ['root'],
      properties: { root: { $ref: '#/$defs/node' } },
    },
    '2020',
  ],
  [
    'allOf merged and oneOf',
    {
      allOf: [
        { type: 'object', required: ['a'], properties: { a: { type: 'integer', minimum: 5 } } },
        {
          required: ['b'],
          properties: { a: { maximum: 7 }, b: { oneOf: [{ type: 'string' }, { type: 'array' }] } },
        },
      ],
    },
    '2020',
  ],
  [
    'tuples (prefixItems) and minProperties',
    {
      type: 'object',
      required: ['point'],
      minProperties: 3,
      properties: {
        point: { type: 'array', prefixItems: [{ type: 'number' }, { type: 'string' }], items: false },
        x: { type: 'boolean' },
        y: { type: 'string', enum: ['sim', 'não'] },
      },
    },
    '2020',
  ],
  [
    'draft-07 definitions, tuple items and boolean exclusive bounds',
    {
      definitions: { score: { type: 'number', minimum: 0, maximum: 10 } },
      type: 'object',
      required: ['scores', 'pair'],
      properties: {
        scores: { type: 'array', items: { $ref: '#/definitions/score' }, minItems: 2 },
        pair: { type: 'array', items: [{ type: 'integer' }, { type: 'boolean' }], additionalItems: false },
      },
    },
    '07',
  ],
  ['a bare schema, which takes anything', {}, '2020'],
  [
    'a root array of strings',
    { type: 'array', items: { type: 'string', minLength: 2 }, minItems: 2 },
    '2020',
  ],
];

describe('exampleOfJsonSchema', () => {
  it.each(SCHEMAS)('satisfies %s', (_name, schema, draft) => {
    const validate = validatorOf(schema, draft);
    const value = exampleOfJsonSchema(schema);
    expect(validate(value) ? [] : validate.errors).toEqual([]);
    // The same schema gives the same value, so answers replay.
    expect(exampleOfJsonSchema(schema)).toEqual(value);
  });

  it('fills required properties only', () => {
    const value = exampleOfJsonSchema(person) as Record<string, unknown>;
    expect(Object.keys(value).sort()).toEqual(['age', 'birthday', 'email', 'name', 'seen']);
    expect(value).toMatchObject({ age: 18, email: 'usuario@example.com', birthday: '2024-01-15' });
    expect((value.name as string).length).toBe(12);
  });
});

describe('invalidJsonAnswer', () => {
  it.each(SCHEMAS)('breaks %s whatever the choice', (_name, schema, draft) => {
    const validate = validatorOf(schema, draft);
    const valid = exampleOfJsonSchema(schema);
    for (const choice of [0, 0.2, 0.34, 0.5, 0.67, 0.9, 0.999]) {
      const { kind, text } = invalidJsonAnswer(schema, valid, choice);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        expect(kind).toBe('not_json');
        continue;
      }
      expect(kind).not.toBe('not_json');
      expect(validate(parsed)).toBe(false);
    }
  });

  it('spreads the choice over every kind the schema allows', () => {
    const valid = exampleOfJsonSchema(person);
    const kinds = [0, 0.4, 0.8].map((choice) => invalidJsonAnswer(person, valid, choice).kind);
    expect(kinds).toEqual(['missing_required', 'wrong_type', 'not_json']);
    expect(JSON.parse(invalidJsonAnswer(person, valid, 0).text)).not.toHaveProperty('name');
    expect(JSON.parse(invalidJsonAnswer(person, valid, 0.4).text).name).toBe(1.5);
    // A schema that takes anything can only be broken by text that is not JSON.
    expect(invalidJsonAnswer({}, 'x', 0).kind).toBe('not_json');
    // An object schema without properties gets a value of another type.
    expect(invalidJsonAnswer({ type: 'object' }, {}, 0)).toEqual({
      kind: 'wrong_type',
      text: '"valor inválido"',
    });
  });
});

/** Schemas built only from the keywords the generator promises to cover. */
const schemaArbitrary = fc.letrec<{ schema: object }>((tie) => ({
  schema: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc
      .record({ min: fc.nat(20), extra: fc.nat(20) })
      .map(({ min, extra }) => ({ type: 'string', minLength: min, maxLength: min + extra })),
    fc
      .record({
        min: fc.integer({ min: -50, max: 50 }),
        span: fc.nat(100),
        step: fc.constantFrom(1, 2, 3, 7),
      })
      .map(({ min, span, step }) => ({
        type: 'integer',
        minimum: min,
        maximum: min + span + step,
        multipleOf: step,
      })),
    fc
      .record({
        min: fc.double({ min: -1e6, max: 1e6, noNaN: true }),
        span: fc.double({ min: 1e-3, max: 1e6, noNaN: true }),
      })
      .map(({ min, span }) => ({ type: 'number', exclusiveMinimum: min, exclusiveMaximum: min + span })),
    fc.constant({ type: 'boolean' }),
    fc.constant({ type: 'null' }),
    fc.constantFrom(
      { format: 'date', type: 'string' },
      { format: 'date-time' },
      { format: 'email' },
      { format: 'uuid' },
    ),
    fc
      .uniqueArray(fc.oneof(fc.string(), fc.integer(), fc.boolean()), { minLength: 1, maxLength: 4 })
      .map((members) => ({ enum: members })),
    fc.jsonValue({ maxDepth: 2 }).map((value) => ({ const: value })),
    fc
      .record({ items: tie('schema'), min: fc.nat(4), extra: fc.nat(3) })
      .map(({ items, min, extra }) => ({ type: 'array', items, minItems: min, maxItems: min + extra })),
    fc
      .record({
        properties: fc.dictionary(fc.constantFrom('a', 'b', 'c', 'nome', 'valor'), tie('schema'), {
          maxKeys: 4,
        }),
        requiredMask: fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
      })
      .map(({ properties, requiredMask }) => ({
        type: 'object',
        properties,
        required: Object.keys(properties).filter((_key, i) => requiredMask[i]),
        additionalProperties: false,
      })),
  ),
})).schema;

describe('exampleOfJsonSchema on generated schemas', () => {
  it('gives a value that satisfies every schema of the covered keywords, and invalid answers that do not', () => {
    fc.assert(
      fc.property(schemaArbitrary, fc.double({ min: 0, max: 0.999, noNaN: true }), (schema, choice) => {
        const validate = validatorOf(schema);
        const value = exampleOfJsonSchema(schema);
        if (!validate(value)) throw new Error(JSON.stringify({ value, errors: validate.errors }));
        const broken = invalidJsonAnswer(schema, value, choice);
        let parsed: unknown;
        try {
          parsed = JSON.parse(broken.text);
        } catch {
          return broken.kind === 'not_json';
        }
        return broken.kind !== 'not_json' && !validate(parsed);
      }),
      { numRuns: 300, seed: 15 },
    );
  });
});
