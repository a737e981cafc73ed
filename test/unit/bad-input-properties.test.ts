import fc from 'fast-check';
import {
  InvalidBatchFileError,
  parseBatchJsonl,
  validateBatchInput,
  InvalidBatchInputError,
} from '../../src';

/**
 * Thousands of generated malformed inputs: each is refused with an error that names a field (or a
 * line), and none crashes the validator. The client refuses before starting anything, so a refused
 * input never becomes a workflow.
 */
describe('bad input, at volume', () => {
  const valid = { requests: [{ messages: [{ role: 'user', content: 'Olá' }] }] };

  /** Every field a corruption may hit. */
  const fieldPaths: readonly (readonly (string | number)[])[] = [
    ['requests'],
    ['requests', 0],
    ['requests', 0, 'messages'],
    ['requests', 0, 'messages', 0],
    ['requests', 0, 'messages', 0, 'role'],
    ['requests', 0, 'messages', 0, 'content'],
    ['requests', 0, 'id'],
    ['requests', 0, 'model'],
    ['requests', 0, 'maxTokens'],
    ['requests', 0, 'temperature'],
    ['requests', 0, 'stop'],
    ['options'],
    ['options', 'maxConcurrency'],
    ['options', 'autoApproveBelow'],
    ['options', 'approvalTimeout'],
    ['options', 'model'],
    ['options', 'retry', 'maximumAttempts'],
    ['options', 'rateLimit', 'rpm'],
    ['options', 'onProgress', 'url'],
  ];

  /** A valid batch with one value replaced somewhere by something of the wrong kind. */
  const corrupted = fc
    .record({
      where: fc.constantFrom(...fieldPaths),
      value: fc.oneof(
        fc.constant(null),
        fc.constant(-1),
        fc.constant(0),
        fc.constant(1.5),
        fc.constant(''),
        fc.constant('robot'),
        fc.constant([]),
        fc.constant({}),
        fc.constant(Number.NaN),
        fc.string({ maxLength: 5 }).filter((s) => s !== 'user' && s !== 'system' && s !== 'assistant'),
        fc.integer({ min: -1_000_000, max: 0 }),
        fc.array(fc.integer(), { maxLength: 3 }),
      ),
    })
    .map(({ where, value }) => {
      const input = structuredClone(valid) as Record<string, unknown>;
      let node = input as Record<string | number, unknown>;
      for (const key of where.slice(0, -1)) {
        if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
        node = node[key] as Record<string | number, unknown>;
      }
      node[where.at(-1)!] = value;
      return { input, where };
    });

  /** `['requests', 0, 'role']` → `requests[0].role`, the form issue paths take. */
  const fieldOf = (where: readonly (string | number)[]): string =>
    where.map((key, i) => (typeof key === 'number' ? `[${key}]` : i === 0 ? key : `.${key}`)).join('');
  /** Whether two field paths lie on one branch (one is the other, or holds it). */
  const onBranch = (a: string, b: string): boolean => {
    const within = (inner: string, outer: string) =>
      inner === outer || inner.startsWith(`${outer}.`) || inner.startsWith(`${outer}[`);
    return within(a, b) || within(b, a);
  };

  test('every malformed batch input is refused with the field named, never a crash', () => {
    let refused = 0;
    const refusedAt = new Set<string>();
    fc.assert(
      fc.property(corrupted, ({ input, where }) => {
        let error: unknown;
        try {
          validateBatchInput(input);
        } catch (err) {
          error = err;
        }
        if (error === undefined) return; // some replacements happen to be valid (e.g. an empty options object)
        expect(error).toBeInstanceOf(InvalidBatchInputError);
        const issues = (error as InvalidBatchInputError).issues;
        expect(issues.length).toBeGreaterThan(0);
        // Only one value was replaced, so every issue is about that field (or what holds or fills it).
        const field = fieldOf(where);
        for (const issue of issues) {
          expect(issue.message.length).toBeGreaterThan(0);
          if (!onBranch(issue.path, field))
            throw new Error(`${field} was replaced, but ${issue.path} is named`);
        }
        refused++;
        refusedAt.add(field);
      }),
      { numRuns: 3000 },
    );
    expect(refused).toBeGreaterThan(2000);
    // A validator that ignored one field would accept every value put there.
    expect([...refusedAt].sort()).toEqual(fieldPaths.map(fieldOf).sort());
  });

  test('arbitrary JSON values are refused with a message, never a crash', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        // A generated value is never a batch: it would need `requests` holding a request with messages.
        let error: unknown;
        try {
          validateBatchInput(value);
        } catch (err) {
          error = err;
        }
        expect(error).toBeInstanceOf(InvalidBatchInputError);
        expect((error as Error).message).toMatch(/^Invalid batch input: /);
        expect((error as InvalidBatchInputError).issues.length).toBeGreaterThan(0);
      }),
      { numRuns: 2000 },
    );
  });

  test('every JSONL file with a bad line is refused whole, naming exactly the bad lines, never a crash', () => {
    // Ids a bad line cannot take by accident: not numeric (positions) and not in any generated line.
    const goodLine = (n: number) =>
      JSON.stringify({ id: `good-${n}`, messages: [{ role: 'user', content: 'Oi' }] });
    // Each of these is certainly not a request: too short to hold one, not an object, or an object
    // without the fields a request needs (nor an id that could clash with a good line's).
    const badLine = fc.oneof(
      fc.string({ maxLength: 30 }).filter((s) => s.trim() !== '' && !s.includes('\n')),
      fc
        .jsonValue()
        .filter(
          (v) =>
            typeof v !== 'object' ||
            v === null ||
            Array.isArray(v) ||
            !['messages', 'body', 'id', 'custom_id'].some((key) => key in v),
        )
        .map((v) => JSON.stringify(v)),
      fc.constant('{"messages": [{"role": "robot", "content": "x"}]}'),
      fc.constant('{"custom_id": "a", "method": "GET", "url": "/v1/chat/completions", "body": {}}'),
      fc.constant('{"id": "x", "messages": "not a list"}'),
    );
    const line = fc.oneof(fc.constant<null>(null), badLine);
    fc.assert(
      fc.property(fc.array(line, { maxLength: 7 }), badLine, fc.nat(7), (others, oneBad, at) => {
        // At least one bad line, anywhere; `null` stands for a good line.
        const slots = [...others];
        slots.splice(at % (slots.length + 1), 0, oneBad);
        const lines = slots.map((slot, i) => slot ?? goodLine(i));
        const badNumbers = slots.flatMap((slot, i) => (slot === null ? [] : [i + 1]));
        let error: unknown;
        try {
          parseBatchJsonl(lines.join('\n'), { maxProblems: 1000 });
        } catch (err) {
          error = err;
        }
        // A parser that skipped bad lines and kept the good ones would return here.
        expect(error).toBeInstanceOf(InvalidBatchFileError);
        const problems = (error as InvalidBatchFileError).problems;
        expect([...new Set(problems.map((p) => p.line))].sort((a, b) => a - b)).toEqual(badNumbers);
        expect((error as Error).message).toMatch(/line \d+/);
      }),
      { numRuns: 2000 },
    );
  });

  test('a message over the model context, and a batch over the inline payload limit, say what to do', () => {
    const huge = 'palavra '.repeat(140_000);
    expect(() => validateBatchInput({ requests: [{ messages: [{ role: 'user', content: huge }] }] })).toThrow(
      /requests\[0\]\.messages: .*context window of 131072 tokens/,
    );
    const many = Array.from({ length: 3000 }, (_, i) => ({
      messages: [{ role: 'user' as const, content: `Pergunta ${i} `.repeat(60) }],
    }));
    expect(() => validateBatchInput({ requests: many })).toThrow(/startFromFile|by reference/);
  });
});
