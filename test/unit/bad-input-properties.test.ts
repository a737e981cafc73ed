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

  /** A valid batch with one value replaced somewhere by something of the wrong kind. */
  const corrupted = fc
    .record({
      where: fc.constantFrom(
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
      ),
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
      return { input, where: where.join('.') };
    });

  test('every malformed batch input is refused with the field named, never a crash', () => {
    let refused = 0;
    fc.assert(
      fc.property(corrupted, ({ input }) => {
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
        for (const issue of issues) {
          expect(issue.path).toMatch(/^(requests|options)/);
          expect(issue.message.length).toBeGreaterThan(0);
        }
        refused++;
      }),
      { numRuns: 3000 },
    );
    expect(refused).toBeGreaterThan(2000);
  });

  test('arbitrary JSON values are refused with a message, never a crash', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        try {
          validateBatchInput(value);
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidBatchInputError);
          expect((err as Error).message).toMatch(/^Invalid batch input: /);
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('every malformed JSONL file is refused whole, naming lines, never a crash', () => {
    const goodLine = JSON.stringify({ id: 'ok', messages: [{ role: 'user', content: 'Oi' }] });
    const badLine = fc.oneof(
      fc.string({ maxLength: 30 }).filter((s) => s.trim() !== '' && !s.includes('\n')),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.constant('{"messages": [{"role": "robot", "content": "x"}]}'),
      fc.constant('{"custom_id": "a", "method": "GET", "url": "/v1/chat/completions", "body": {}}'),
      fc.constant('{"id": "x", "messages": "not a list"}'),
    );
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constant(goodLine), badLine), { minLength: 1, maxLength: 8 }),
        fc.nat(7),
        (lines, at) => {
          const bad = lines.some((l) => l !== goodLine);
          const text = lines.join('\n');
          let error: unknown;
          try {
            parseBatchJsonl(text);
          } catch (err) {
            error = err;
          }
          if (!bad && lines.length === 1) return void at;
          if (error === undefined) return; // e.g. a generated line that is itself a valid request
          expect(error).toBeInstanceOf(InvalidBatchFileError);
          const problems = (error as InvalidBatchFileError).problems;
          expect(problems.length).toBeGreaterThan(0);
          for (const p of problems) expect(p.line).toBeGreaterThanOrEqual(0);
          expect((error as Error).message).toMatch(/line \d+|no requests/);
        },
      ),
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
