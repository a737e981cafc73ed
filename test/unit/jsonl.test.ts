import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import {
  parseBatchJsonl,
  parseBatchJsonlFile,
  readOpenAIBatchOutput,
  toJsonlInputLines,
  toOpenAIBatchOutput,
  toOpenAIBatchOutputLine,
  type ParseBatchJsonlOptions,
} from '../../src/store/jsonl';
import {
  InvalidBatchFileError,
  type BatchFileProblem,
} from '../../src/store/errors/invalid-batch-file-error';
import { MaritacaBatchError } from '../../src/store/errors/maritaca-batch-error';
import { validateBatchInput } from '../../src/client/validate';
import { KNOWN_MODELS, type BatchRequest, type RequestOutcome } from '../../src/shared';

const FIXTURES = path.join(__dirname, '..', 'fixtures');
const user = (content: string) => ({ role: 'user', content });

/** One OpenAI Batch API input line; `line` overrides or adds top-level fields. */
function openai(body: Record<string, unknown>, line: Record<string, unknown> = {}): string {
  return JSON.stringify({ custom_id: 'x', method: 'POST', url: '/v1/chat/completions', body, ...line });
}

function refusal(text: string, options?: ParseBatchJsonlOptions): InvalidBatchFileError {
  try {
    parseBatchJsonl(text, options);
  } catch (err) {
    if (err instanceof InvalidBatchFileError) return err;
    throw err;
  }
  throw new Error('expected the file to be refused');
}

const problemsOf = (text: string): readonly BatchFileProblem[] => refusal(text).problems;

describe('parseBatchJsonl: accepted files', () => {
  test('reads the 200-request OpenAI fixture', async () => {
    const { requests, models } = await parseBatchJsonlFile(path.join(FIXTURES, 'openai-batch-200.jsonl'));
    expect(requests).toHaveLength(200);
    expect(requests.map((r) => r.id)).toEqual(
      Array.from({ length: 200 }, (_, i) => `req-${String(i + 1).padStart(3, '0')}`),
    );
    expect(models).toEqual(['sabiazinho-4', 'sabia-4']);
    expect(requests[0]).toEqual({
      id: 'req-001',
      model: 'sabiazinho-4',
      messages: [{ role: 'user', content: 'Qual é a capital do estado de São Paulo?' }],
      maxTokens: 64,
    });
    expect(requests.filter((r) => r.messages[0]?.role === 'system').length).toBeGreaterThan(10);
    expect(new Set(requests.map((r) => r.maxTokens)).size).toBeGreaterThan(4);
  });

  test('reads the short-form fixture, including the max_tokens spelling and a line without id', async () => {
    const { requests, models } = await parseBatchJsonlFile(path.join(FIXTURES, 'short-form.jsonl'));
    expect(requests).toEqual([
      { id: 'capital', messages: [user('Qual é a capital do Brasil?')], maxTokens: 50 },
      {
        id: 'poema',
        model: 'sabia-4',
        messages: [
          { role: 'system', content: 'Você é um poeta.' },
          user('Escreva um haicai sobre o Cerrado.'),
        ],
        maxTokens: 120,
        temperature: 0.9,
      },
      { messages: [user('Quanto é 12 vezes 12?')], model: 'sabiazinho-4', stop: ['\n\n'] },
    ]);
    expect(models).toEqual(['sabia-4', 'sabiazinho-4']);
  });

  test('maps every OpenAI body field and ignores harmless unknown ones', () => {
    const text = openai(
      {
        model: 'sabia-4',
        messages: [user('Oi')],
        max_tokens: 10,
        temperature: 0.2,
        top_p: 0.9,
        stop: ['FIM'],
        n: 1,
        stream: false,
        response_format: { type: 'text' },
        tools: [],
        user: 'ana',
        seed: 7,
        metadata: { lote: '1' },
        max_completion_tokens: null,
      },
      { custom_id: 'a' },
    );
    expect(parseBatchJsonl(text).requests).toEqual([
      {
        id: 'a',
        model: 'sabia-4',
        messages: [user('Oi')],
        maxTokens: 10,
        temperature: 0.2,
        topP: 0.9,
        stop: ['FIM'],
        responseFormat: { type: 'text' },
        seed: 7,
      },
    ]);
  });

  test('accepts /chat/completions and a line without custom_id', () => {
    const text = JSON.stringify({
      method: 'POST',
      url: '/chat/completions',
      body: { messages: [user('a')] },
    });
    expect(parseBatchJsonl(text).requests).toEqual([{ messages: [user('a')] }]);
  });

  test('takes max_completion_tokens as maxTokens', () => {
    const text = openai({ messages: [user('a')], max_completion_tokens: 77 });
    expect(parseBatchJsonl(text).requests[0]?.maxTokens).toBe(77);
    const both = openai({ messages: [user('a')], max_tokens: 77, max_completion_tokens: 77 });
    expect(parseBatchJsonl(both).requests[0]?.maxTokens).toBe(77);
  });

  test('keeps content blocks as Maritaca takes them', () => {
    const text = openai({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Primeira parte' },
            { type: 'text', text: 'Segunda parte' },
          ],
        },
      ],
    });
    expect(parseBatchJsonl(text).requests[0]?.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Primeira parte' },
          { type: 'text', text: 'Segunda parte' },
        ],
      },
    ]);
  });

  test('reads a file mixing both formats', () => {
    const text = [
      openai({ model: 'sabia-4', messages: [user('a')] }, { custom_id: 'o1' }),
      JSON.stringify({ id: 's1', model: 'sabiazinho-4', messages: [user('b')], topP: 0.5 }),
      openai({ model: 'sabia-4', messages: [user('c')] }, { custom_id: 'o2' }),
    ].join('\n');
    const { requests, models } = parseBatchJsonl(text);
    expect(requests.map((r) => r.id)).toEqual(['o1', 's1', 'o2']);
    expect(requests[1]).toEqual({ id: 's1', model: 'sabiazinho-4', messages: [user('b')], topP: 0.5 });
    expect(models).toEqual(['sabia-4', 'sabiazinho-4']);
  });

  test('ignores a BOM, handles CRLF and counts blank lines as physical lines', () => {
    const good = JSON.stringify({ id: 'a', messages: [user('a')] });
    const text =
      '\uFEFF' + [good, '', '   \t', JSON.stringify({ id: 'b', messages: [user('b')] }), ''].join('\r\n');
    expect(parseBatchJsonl(text).requests.map((r) => r.id)).toEqual(['a', 'b']);

    const bad = '\uFEFF' + [good, '\t', '', JSON.stringify({ id: 'b', messages: [] })].join('\r\n');
    expect(problemsOf(bad)).toEqual([
      { line: 4, field: 'messages', message: 'must contain at least one message' },
    ]);
  });
});

describe('parseBatchJsonl: problems', () => {
  test('formats the message one problem per line in the file’s own terms', () => {
    const text = [
      openai({ messages: [user('ok')] }, { custom_id: 'a' }),
      openai({ messages: [{ role: 'robot', content: 'x' }] }, { custom_id: 'b' }),
      JSON.stringify({ messages: [{ role: 'robot', content: 'x' }] }),
    ].join('\n');
    const err = refusal(text);
    expect(err).toBeInstanceOf(MaritacaBatchError);
    expect(err.name).toBe('InvalidBatchFileError');
    expect(err.message).toBe(
      [
        'Invalid batch file (2 problems):',
        'line 2: body.messages[0].role: must be one of system, user, assistant, tool',
        'line 3: messages[0].role: must be one of system, user, assistant, tool',
      ].join('\n'),
    );
    expect(err.truncated).toBe(false);
    expect(err.totalProblems).toBe(2);
  });

  test('reports invalid JSON with the parser message', () => {
    const text = [JSON.stringify({ messages: [user('a')] }), '{"messages": [', '[1, 2]', '42'].join('\n');
    const problems = problemsOf(text);
    expect(problems).toHaveLength(3);
    expect(problems[0]?.line).toBe(2);
    expect(problems[0]?.field).toBeUndefined();
    expect(problems[0]?.message).toMatch(/^not valid JSON \(.+\)$/);
    expect(problems.slice(1)).toEqual([
      { line: 3, message: 'must be a JSON object (one request per line)' },
      { line: 4, message: 'must be a JSON object (one request per line)' },
    ]);
    expect(refusal(text).message).toMatch(/\nline 2: not valid JSON \(/);
  });

  test('checks method, url and body of OpenAI lines', () => {
    const text = [
      openai({ messages: [user('a')] }, { method: 'GET', custom_id: 'a' }),
      openai({ messages: [user('a')] }, { url: '/v1/embeddings', custom_id: 'b' }),
      JSON.stringify({ custom_id: 'c', method: 'POST', url: '/v1/chat/completions' }),
      JSON.stringify({ custom_id: 'd', body: { messages: [user('a')] } }),
    ].join('\n');
    expect(problemsOf(text)).toEqual([
      { line: 1, field: 'method', message: 'must be "POST" (got "GET")' },
      { line: 2, field: 'url', message: 'must be "/v1/chat/completions" (got "/v1/embeddings")' },
      { line: 3, field: 'body', message: 'must be an object holding the chat completion request' },
      { line: 4, field: 'method', message: 'must be "POST" (got undefined)' },
      { line: 4, field: 'url', message: 'must be "/v1/chat/completions" (got undefined)' },
    ]);
  });

  test('refuses body fields that change what the request means', () => {
    const text = [
      openai({ messages: [user('a')], n: 2 }, { custom_id: 'a' }),
      openai({ messages: [user('a')], stream: true }, { custom_id: 'b' }),
      openai(
        { messages: [user('a')], functions: [{ name: 'f', parameters: { type: 'object' } }] },
        { custom_id: 'c' },
      ),
      openai({ messages: [user('a')], function_call: 'auto' }, { custom_id: 'd' }),
      JSON.stringify({ id: 'e', messages: [user('a')], n: 3 }),
    ].join('\n');
    expect(problemsOf(text).map((p) => [p.line, p.field])).toEqual([
      [1, 'body.n'],
      [2, 'body.stream'],
      [3, 'body.functions'],
      [4, 'body.function_call'],
      [5, 'n'],
    ]);
    expect(problemsOf(text)[0]?.message).toBe('only one completion per request is supported (got 2)');
  });

  test('refuses content parts Maritaca does not take, naming them', () => {
    const text = openai({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Descreva o áudio' },
            { type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } },
          ],
        },
      ],
    });
    expect(problemsOf(text)).toEqual([
      {
        line: 1,
        field: 'body.messages[0].content[1].type',
        message: 'must be a {"type": "text"}, {"type": "image"} or {"type": "image_url"} block',
      },
    ]);
    const short = JSON.stringify({ messages: [{ role: 'user', content: [{ type: 'text', text: 3 }] }] });
    expect(problemsOf(short)).toEqual([
      { line: 1, field: 'messages[0].content[0].text', message: 'must be a string' },
    ]);
  });

  test('names schema problems by the field the line used', () => {
    const text = [
      openai({ messages: [user('a')], max_tokens: 0 }, { custom_id: 'a' }),
      openai({ messages: [user('a')], max_completion_tokens: 1.5 }, { custom_id: 'b' }),
      openai({ messages: [user('a')], temperature: 3, top_p: 0 }, { custom_id: 'c' }),
      openai({ messages: [] }, { custom_id: '' }),
      JSON.stringify({ id: 'e', messages: [user('a')], maxTokens: '100' }),
      JSON.stringify({ id: 'f', messages: [user('a')], max_tokens: -1 }),
      JSON.stringify({ id: '', messages: [{ role: 'user', content: 1 }], top_p: 2, stop: [1] }),
      openai({ messages: [user('a')], max_tokens: 10, max_completion_tokens: 20 }, { custom_id: 'h' }),
    ].join('\n');
    expect(problemsOf(text).map((p) => [p.line, p.field])).toEqual([
      [1, 'body.max_tokens'],
      [2, 'body.max_completion_tokens'],
      [3, 'body.temperature'],
      [3, 'body.top_p'],
      [4, 'custom_id'],
      [4, 'body.messages'],
      [5, 'maxTokens'],
      [6, 'max_tokens'],
      [7, 'id'],
      [7, 'messages[0].content'],
      [7, 'top_p'],
      [7, 'stop'],
      [8, 'body.max_completion_tokens'],
    ]);
    expect(problemsOf(text)[12]?.message).toBe('conflicts with body.max_tokens (10); give only one of them');
  });

  test('names unknown models and lists the known ones, given the known ones', () => {
    const text = [
      openai({ model: 'gpt-4o', messages: [user('a')] }),
      JSON.stringify({ model: 'sabia-2', messages: [user('a')] }),
    ].join('\n');
    const message = `must be one of ${KNOWN_MODELS.join(', ')}`;
    expect(refusal(text, { knownModels: KNOWN_MODELS }).problems).toEqual([
      { line: 1, field: 'body.model', message },
      { line: 2, field: 'model', message },
    ]);
  });

  test('refuses duplicate ids, naming both lines', () => {
    const text = [
      openai({ messages: [user('a')] }, { custom_id: 'req-1' }),
      JSON.stringify({ id: 'req-2', messages: [user('b')] }),
      '',
      JSON.stringify({ id: 'req-1', messages: [user('c')] }),
      openai({ messages: [user('d')] }, { custom_id: 'req-2' }),
    ].join('\n');
    expect(problemsOf(text)).toEqual([
      { line: 4, field: 'id', message: 'duplicate id "req-1" (also used on line 1)' },
      { line: 5, field: 'custom_id', message: 'duplicate id "req-2" (also used on line 2)' },
    ]);
  });

  test('refuses ids that collide with the positional ids the workflow gives lines without one', () => {
    const text = [
      JSON.stringify({ messages: [user('a')] }),
      JSON.stringify({ id: '0', messages: [user('b')] }),
      JSON.stringify({ id: '3', messages: [user('c')] }),
      JSON.stringify({ messages: [user('d')] }),
    ].join('\n');
    expect(problemsOf(text)).toEqual([
      {
        line: 2,
        field: 'id',
        message: 'id "0" is also the id line 1 gets from its position, as it has none',
      },
      {
        line: 4,
        message: 'this request has no id, so it gets "3" from its position, but line 3 already uses that id',
      },
    ]);
  });

  test.each([
    ['an empty file', ''],
    ['only blank lines', '\n  \r\n\t\n'],
    ['only a BOM', '\uFEFF'],
  ])('refuses %s', (_, text) => {
    const err = refusal(text);
    expect(err.problems).toEqual([{ line: 0, message: 'the file contains no requests' }]);
    expect(err.message).toBe('Invalid batch file (1 problem):\nthe file contains no requests');
  });

  test('keeps the first 20 problems and says how many more there are', () => {
    const text = Array.from({ length: 25 }, (_, i) => JSON.stringify({ id: `q${i}`, messages: [] })).join(
      '\n',
    );
    const err = refusal(text);
    expect(err.problems).toHaveLength(20);
    expect(err.problems.map((p) => p.line)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(err.truncated).toBe(true);
    expect(err.totalProblems).toBe(25);
    const lines = err.message.split('\n');
    expect(lines).toHaveLength(22);
    expect(lines[20]).toBe('line 20: messages: must contain at least one message');
    expect(lines[21]).toBe('… and 5 more problems');

    const capped = refusal(text, { maxProblems: 3 });
    expect(capped.problems).toHaveLength(3);
    expect(capped.message.endsWith('… and 22 more problems')).toBe(true);
    expect(refusal(text, { maxProblems: 25 }).truncated).toBe(false);
    expect(() => parseBatchJsonl(text, { maxProblems: 0 })).toThrow(RangeError);
  });
});

describe('parseBatchJsonlFile', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'jsonl-test-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('names the path when the file cannot be read', async () => {
    const missing = path.join(dir, 'nao-existe.jsonl');
    const err: unknown = await parseBatchJsonlFile(missing).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MaritacaBatchError);
    expect(err).not.toBeInstanceOf(InvalidBatchFileError);
    expect((err as Error).message).toContain(JSON.stringify(missing));
    expect((err as Error).message).toContain('ENOENT');
  });

  test('names the path of an invalid file', async () => {
    const file = path.join(dir, 'ruim.jsonl');
    writeFileSync(file, '{"messages": []}\n');
    const err: unknown = await parseBatchJsonlFile(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidBatchFileError);
    expect((err as InvalidBatchFileError).file).toBe(file);
    expect((err as Error).message).toBe(
      `Invalid batch file ${JSON.stringify(file)} (1 problem):\nline 1: messages: must contain at least one message`,
    );
  });

  test('refuses text that is not UTF-8, naming the line', async () => {
    const file = path.join(dir, 'latin1.jsonl');
    writeFileSync(
      file,
      Buffer.concat([
        Buffer.from('{"messages": [{"role": "user", "content": "ok"}]}\n'),
        Buffer.from('{"messages": [{"role": "user", "content": "Ol\xe1"}]}\n', 'latin1'),
      ]),
    );
    const err: unknown = await parseBatchJsonlFile(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidBatchFileError);
    expect((err as InvalidBatchFileError).problems).toEqual([
      { line: 2, message: 'not valid UTF-8 text (save the file as UTF-8)' },
    ]);
  });
});

describe('toJsonlInputLines', () => {
  const cases: BatchRequest[][] = [
    [{ messages: [{ role: 'user', content: 'Oi' }] }],
    [
      {
        id: 'completo',
        model: 'sabia-4',
        messages: [
          { role: 'system', content: 'Seja breve.' },
          { role: 'user', content: 'Linha 1\nLinha 2 "aspas" e \\ barra' },
          { role: 'assistant', content: '' },
        ],
        maxTokens: 300,
        temperature: 0,
        topP: 1,
        stop: 'FIM',
      },
      { id: 'b', messages: [{ role: 'user', content: 'ç ã 😀' }], stop: ['a', 'b', 'c', 'd'] },
      { messages: [{ role: 'user', content: 'sem id' }], temperature: 2 },
    ],
  ];

  test.each(['openai', 'short'] as const)('round-trips hand-made requests in the %s format', (format) => {
    for (const requests of cases) {
      const text = toJsonlInputLines(requests, format);
      expect(text.endsWith('\n')).toBe(true);
      expect(text.split('\n')).toHaveLength(requests.length + 1);
      expect(parseBatchJsonl(text).requests).toEqual(requests);
    }
    expect(toJsonlInputLines([], format)).toBe('');
  });

  test('writes the documented shapes', () => {
    const request: BatchRequest = {
      id: 'q1',
      messages: [{ role: 'user', content: 'Oi' }],
      maxTokens: 20,
      topP: 0.5,
    };
    expect(toJsonlInputLines([request], 'short')).toBe(
      '{"id":"q1","messages":[{"role":"user","content":"Oi"}],"maxTokens":20,"topP":0.5}\n',
    );
    expect(JSON.parse(toJsonlInputLines([request], 'openai'))).toEqual({
      custom_id: 'q1',
      method: 'POST',
      url: '/v1/chat/completions',
      body: { messages: [{ role: 'user', content: 'Oi' }], max_tokens: 20, top_p: 0.5 },
    });
  });

  test('round-trips generated requests in both formats', () => {
    const request = fc.record(
      {
        id: fc.string({ minLength: 1 }),
        messages: fc.array(
          fc.record({
            role: fc.constantFrom('system' as const, 'user' as const, 'assistant' as const),
            content: fc.string(),
          }),
          { minLength: 1, maxLength: 3 },
        ),
        model: fc.constantFrom(...KNOWN_MODELS),
        maxTokens: fc.integer({ min: 1, max: 32_000 }),
        temperature: fc.double({ min: 0, max: 2, noNaN: true }),
        topP: fc.double({ min: 0.01, max: 1, noNaN: true }),
        stop: fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 4 })),
      },
      { requiredKeys: ['id', 'messages'] },
    );
    const uniqueRequests = fc.uniqueArray(request, { minLength: 1, maxLength: 5, selector: (r) => r.id });
    fc.assert(
      fc.property(
        uniqueRequests,
        fc.constantFrom('openai' as const, 'short' as const),
        (requests, format) => {
          expect(parseBatchJsonl(toJsonlInputLines(requests, format)).requests).toEqual(requests);
        },
      ),
    );
  });
});

describe('OpenAI Batch API output', () => {
  const success: RequestOutcome = {
    id: 'req-001',
    index: 0,
    ok: true,
    attempts: 1,
    cost: 0.0001,
    result: {
      generations: [
        {
          text: 'Brasília.',
          message: { role: 'assistant', content: 'Brasília.' },
          generationInfo: { finishReason: 'stop' },
        },
      ],
      llmOutput: {
        model: 'sabiazinho-4',
        tokenUsage: { promptTokens: 12, completionTokens: 3, totalTokens: 15, cachedPromptTokens: 8 },
      },
    },
  };
  const httpFailure: RequestOutcome = {
    id: 'req-002',
    index: 1,
    ok: false,
    attempts: 1,
    error: { type: 'MaritacaBadRequest', message: 'max_tokens too large', status: 400 },
  };
  const connectionFailure: RequestOutcome = {
    id: 'req-003',
    index: 2,
    ok: false,
    attempts: 5,
    error: { type: 'MaritacaConnectionError', message: 'connect ECONNREFUSED' },
  };

  test('writes a success', () => {
    expect(JSON.parse(toOpenAIBatchOutputLine(success, 'lote-1'))).toEqual({
      id: 'lote-1/req-001',
      custom_id: 'req-001',
      response: {
        status_code: 200,
        request_id: 'lote-1/req-001',
        body: {
          id: 'lote-1/req-001',
          object: 'chat.completion',
          model: 'sabiazinho-4',
          choices: [
            { index: 0, message: { role: 'assistant', content: 'Brasília.' }, finish_reason: 'stop' },
          ],
          usage: {
            prompt_tokens: 12,
            completion_tokens: 3,
            total_tokens: 15,
            prompt_tokens_details: { cached_tokens: 8 },
          },
        },
      },
      error: null,
    });
    expect(toOpenAIBatchOutputLine(success, 'lote-1')).not.toContain('\n');
  });

  test('leaves out cached tokens when they are not known', () => {
    const plain: RequestOutcome = {
      ...success,
      ok: true,
      result: {
        ...success.result,
        llmOutput: { model: 'sabia-4', tokenUsage: { promptTokens: 1, completionTokens: 2, totalTokens: 3 } },
      },
    } as RequestOutcome;
    const line = JSON.parse(toOpenAIBatchOutputLine(plain, 'b'));
    expect(line.response.body.usage).toEqual({ prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 });
  });

  test('writes a failure Maritaca answered with an HTTP status', () => {
    expect(JSON.parse(toOpenAIBatchOutputLine(httpFailure, 'lote-1'))).toEqual({
      id: 'lote-1/req-002',
      custom_id: 'req-002',
      response: {
        status_code: 400,
        request_id: 'lote-1/req-002',
        body: { error: { message: 'max_tokens too large', type: 'MaritacaBadRequest' } },
      },
      error: null,
    });
  });

  test('writes a failure without an HTTP answer', () => {
    expect(JSON.parse(toOpenAIBatchOutputLine(connectionFailure, 'lote-1'))).toEqual({
      id: 'lote-1/req-003',
      custom_id: 'req-003',
      response: null,
      error: { code: 'MaritacaConnectionError', message: 'connect ECONNREFUSED' },
    });
  });

  test('round-trips a whole output file', () => {
    const outcomes = [success, httpFailure, connectionFailure];
    const text = toOpenAIBatchOutput(outcomes, 'lote-1');
    expect(text.endsWith('}\n')).toBe(true);
    expect(text.split('\n')).toHaveLength(4);
    const lines = readOpenAIBatchOutput(text);
    expect(lines).toEqual(outcomes.map((o) => JSON.parse(toOpenAIBatchOutputLine(o, 'lote-1'))));
    expect(lines.map((l) => l.custom_id)).toEqual(['req-001', 'req-002', 'req-003']);
    expect(readOpenAIBatchOutput('\uFEFF' + text.replace(/\n/g, '\r\n'))).toEqual(lines);
    expect(toOpenAIBatchOutput([], 'lote-1')).toBe('');
    expect(readOpenAIBatchOutput('')).toEqual([]);
  });

  test('refuses output lines that are not JSON or miss fields', () => {
    let err: unknown;
    try {
      readOpenAIBatchOutput(['{"id": "a", "custom_id": "a", "response": null}', 'nope'].join('\n'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidBatchFileError);
    const problems = (err as InvalidBatchFileError).problems;
    expect(problems.map((p) => [p.line, p.field])).toEqual([
      [1, 'error'],
      [2, undefined],
    ]);
    expect(problems[1]?.message).toMatch(/^not valid JSON/);
  });
});

describe('the sample batch files in examples/', () => {
  const dir = path.join(__dirname, '..', '..', 'examples');
  const files = readdirSync(dir).filter((f) => f.endsWith('.jsonl'));

  test.each(files)('%s parses and passes the same checks submit makes', async (file) => {
    const { requests } = await parseBatchJsonlFile(path.join(dir, file));
    expect(requests.length).toBeGreaterThan(0);
    expect(() => validateBatchInput({ requests }, { inline: false })).not.toThrow();
  });

  test('there are samples in both formats', () => {
    expect(files.sort()).toEqual(['openai-batch.jsonl', 'sample.jsonl']);
  });
});
