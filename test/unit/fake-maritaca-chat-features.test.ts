import Ajv2020 from 'ajv/dist/2020';
import OpenAI from 'openai';
import {
  DEFAULT_FAKE_IMAGE_TOKENS,
  DEFAULT_FAKE_TEMPLATE_OVERHEAD,
  fakePromptTokens,
  fakePromptTokensOf,
  type FakeMaritacaServer,
} from '../../src/testing/fake-maritaca';
import { countTokens } from '../../src/tokenizer/maritaca-tokenizer';
import { fakeServersFor } from '../helpers/fake-servers';

const API_KEY = 'test-key';
const start = fakeServersFor(API_KEY);

function chat(server: FakeMaritacaServer, body: unknown): Promise<Response> {
  return fetch(`${server.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
    body: JSON.stringify(body),
  });
}

/** Bodies are checked field by field against what the fake promises, so a loose type is enough. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function readJson(response: Response): Promise<any> {
  return response.json();
}

/** The body of a 200 answer; any other status fails the test with the body it came with. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function answer(server: FakeMaritacaServer, body: unknown): Promise<any> {
  const response = await chat(server, body);
  const json = await readJson(response);
  if (response.status !== 200) throw new Error(`status ${response.status}: ${JSON.stringify(json)}`);
  return json;
}

/** Exact count with Maritaca's tokenizer, independent of the fake's own helpers. */
function tokens(text: string, model = 'sabia-4'): number {
  const count = countTokens(text, model);
  if (count === undefined) throw new Error(`no tokenizer for ${model}`);
  return count;
}

const ajv = new Ajv2020({ allErrors: true, strict: false });
ajv.addFormat('date', /^\d{4}-\d{2}-\d{2}$/);
ajv.addFormat('date-time', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/);
ajv.addFormat('email', /^[^\s@]+@[^\s@]+\.[^\s@]+$/);

/** Whether `text` is JSON that satisfies `schema`. */
function satisfies(schema: object, text: string | null): boolean {
  if (text === null) return false;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return false;
  }
  return ajv.validate(schema, value);
}

// A 1x1 transparent PNG.
const PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';
const imageBlock = { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } };
const urlImageBlock = { type: 'image', source: { type: 'url', url: 'https://example.com/gato.jpg' } };

const weather = {
  type: 'function',
  function: {
    name: 'consultar_clima',
    description: 'Consulta o clima de uma cidade numa data.',
    parameters: {
      type: 'object',
      properties: {
        cidade: { type: 'string', minLength: 3 },
        data: { type: 'string', format: 'date' },
        unidade: { type: 'string', enum: ['celsius', 'fahrenheit'] },
        dias: { type: 'integer', minimum: 1, maximum: 7 },
        detalhes: {
          type: 'object',
          properties: { umidade: { type: 'boolean' }, horas: { type: 'array', items: { type: 'integer' } } },
          required: ['umidade', 'horas'],
        },
        observacao: { type: 'string' },
      },
      required: ['cidade', 'data', 'unidade', 'dias', 'detalhes'],
      additionalProperties: false,
    },
  },
};
const search = {
  type: 'function',
  function: {
    name: 'buscar',
    parameters: {
      type: 'object',
      properties: { termo: { type: 'string' }, limite: { type: 'integer', minimum: 10 } },
      required: ['termo', 'limite'],
    },
  },
};

/** A record whose three properties are required: every way of breaking it is available. */
const RECORD_SCHEMA = {
  type: 'object',
  properties: {
    nome: { type: 'string' },
    idade: { type: 'integer', minimum: 0 },
    tags: { type: 'array', items: { type: 'string' } },
  },
  required: ['nome', 'idade', 'tags'],
  additionalProperties: false,
};

function ask(content: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: 'sabia-4', messages: [{ role: 'user', content }], ...extra };
}

/** A conversation in which the assistant called a tool and the tool answered. */
function afterToolCall(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model: 'sabia-4',
    messages: [
      { role: 'user', content: 'Como está o clima em Recife?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          {
            id: 'call_1',
            type: 'function',
            function: { name: 'consultar_clima', arguments: '{"cidade":"Recife"}' },
          },
        ],
      },
      { role: 'tool', tool_call_id: 'call_1', content: '29 graus e sol' },
    ],
    tools: [weather],
    ...extra,
  };
}

describe('fake Maritaca chat features: validation', () => {
  const messagesWith = (content: unknown) => ask(content);
  const at = (...loc: (string | number)[]) => ['body', ...loc];

  it.each<[string, Record<string, unknown>, (string | number)[], string]>([
    [
      'an OpenAI image_url block, unconverted',
      messagesWith([
        { type: 'text', text: 'O que há na imagem?' },
        { type: 'image_url', image_url: { url: 'https://example.com/a.png' } },
      ]),
      at('messages', 0, 'content', 1),
      'union_tag_invalid',
    ],
    ['content of another type', messagesWith(42), at('messages', 0, 'content'), 'string_type'],
    ['an empty content list', messagesWith([]), at('messages', 0, 'content'), 'too_short'],
    [
      'a block without type',
      messagesWith([{ text: 'oi' }]),
      at('messages', 0, 'content', 0),
      'union_tag_not_found',
    ],
    [
      'a text block without text',
      messagesWith([{ type: 'text' }]),
      at('messages', 0, 'content', 0, 'text'),
      'missing',
    ],
    [
      'a block that is not an object',
      messagesWith(['oi']),
      at('messages', 0, 'content', 0),
      'model_attributes_type',
    ],
    [
      'an image of an unsupported type',
      messagesWith([{ type: 'image', source: { type: 'base64', media_type: 'image/bmp', data: PNG } }]),
      at('messages', 0, 'content', 0, 'source', 'media_type'),
      'literal_error',
    ],
    [
      'image data that is not base64',
      messagesWith([
        { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'não é base64!' } },
      ]),
      at('messages', 0, 'content', 0, 'source', 'data'),
      'value_error',
    ],
    [
      'empty image data',
      messagesWith([{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: '' } }]),
      at('messages', 0, 'content', 0, 'source', 'data'),
      'value_error',
    ],
    [
      'unpadded image data',
      messagesWith([{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0' } }]),
      at('messages', 0, 'content', 0, 'source', 'data'),
      'value_error',
    ],
    [
      'an image without source',
      messagesWith([{ type: 'image' }]),
      at('messages', 0, 'content', 0, 'source'),
      'missing',
    ],
    [
      'an image source of an unknown type',
      messagesWith([{ type: 'image', source: { type: 'file', path: '/tmp/a.png' } }]),
      at('messages', 0, 'content', 0, 'source'),
      'union_tag_invalid',
    ],
    [
      'an image URL that is not http(s)',
      messagesWith([{ type: 'image', source: { type: 'url', url: 'ftp://example.com/a.png' } }]),
      at('messages', 0, 'content', 0, 'source', 'url'),
      'url_scheme',
    ],
    [
      'an image URL that is no URL',
      messagesWith([{ type: 'image', source: { type: 'url', url: 'gato.png' } }]),
      at('messages', 0, 'content', 0, 'source', 'url'),
      'url_parsing',
    ],
    [
      'a tool message without tool_call_id',
      {
        ...afterToolCall(),
        messages: [...(afterToolCall().messages as object[]).slice(0, 2), { role: 'tool', content: 'x' }],
      },
      at('messages', 2, 'tool_call_id'),
      'missing',
    ],
    [
      'a tool_call_id that is not a string',
      {
        ...afterToolCall(),
        messages: [
          ...(afterToolCall().messages as object[]).slice(0, 2),
          { role: 'tool', tool_call_id: 1, content: 'x' },
        ],
      },
      at('messages', 2, 'tool_call_id'),
      'string_type',
    ],
    [
      'a tool_call_id no assistant message made',
      {
        ...afterToolCall(),
        messages: [
          ...(afterToolCall().messages as object[]).slice(0, 2),
          { role: 'tool', tool_call_id: 'call_2', content: 'x' },
        ],
      },
      at('messages', 2, 'tool_call_id'),
      'value_error',
    ],
    [
      'a tool message before the call it answers',
      {
        model: 'sabia-4',
        messages: [
          { role: 'tool', tool_call_id: 'call_1', content: 'x' },
          (afterToolCall().messages as object[])[1],
        ],
      },
      at('messages', 0, 'tool_call_id'),
      'value_error',
    ],
    [
      'assistant tool_calls that are not a list',
      { model: 'sabia-4', messages: [{ role: 'assistant', content: '', tool_calls: { id: 'x' } }] },
      at('messages', 0, 'tool_calls'),
      'list_type',
    ],
    [
      'tool call arguments sent as an object',
      {
        model: 'sabia-4',
        messages: [
          {
            role: 'assistant',
            content: null,
            tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: { a: 1 } } }],
          },
        ],
      },
      at('messages', 0, 'tool_calls', 0, 'function', 'arguments'),
      'string_type',
    ],
    [
      'tool call arguments that are not JSON',
      {
        model: 'sabia-4',
        messages: [
          {
            role: 'assistant',
            content: null,
            tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{a: 1' } }],
          },
        ],
      },
      at('messages', 0, 'tool_calls', 0, 'function', 'arguments'),
      'json_invalid',
    ],
    [
      'a tool call of another type',
      {
        model: 'sabia-4',
        messages: [
          {
            role: 'assistant',
            content: null,
            tool_calls: [{ id: 'c', type: 'custom', function: { name: 'f', arguments: '{}' } }],
          },
        ],
      },
      at('messages', 0, 'tool_calls', 0, 'type'),
      'literal_error',
    ],
    [
      'a null content on an assistant message without calls',
      { model: 'sabia-4', messages: [{ role: 'assistant', content: null }] },
      at('messages', 0, 'content'),
      'string_type',
    ],
    ['tools that are not a list', ask('oi', { tools: weather }), at('tools'), 'list_type'],
    [
      'a tool of another type',
      ask('oi', { tools: [{ ...weather, type: 'retrieval' }] }),
      at('tools', 0, 'type'),
      'literal_error',
    ],
    [
      'a tool without function',
      ask('oi', { tools: [{ type: 'function' }] }),
      at('tools', 0, 'function'),
      'missing',
    ],
    [
      'a function name with spaces',
      ask('oi', { tools: [{ type: 'function', function: { name: 'consultar clima' } }] }),
      at('tools', 0, 'function', 'name'),
      'string_pattern_mismatch',
    ],
    [
      'a function name of 65 characters',
      ask('oi', { tools: [{ type: 'function', function: { name: 'f'.repeat(65) } }] }),
      at('tools', 0, 'function', 'name'),
      'string_pattern_mismatch',
    ],
    [
      'two tools of the same name',
      ask('oi', { tools: [weather, search, weather] }),
      at('tools', 2, 'function', 'name'),
      'value_error',
    ],
    [
      'parameters that are not an object',
      ask('oi', { tools: [{ type: 'function', function: { name: 'f', parameters: '{}' } }] }),
      at('tools', 0, 'function', 'parameters'),
      'dict_type',
    ],
    [
      'an unknown tool_choice mode',
      ask('oi', { tools: [weather], tool_choice: 'always' }),
      at('tool_choice'),
      'literal_error',
    ],
    [
      'a tool_choice of another kind',
      ask('oi', { tools: [weather], tool_choice: 3 }),
      at('tool_choice'),
      'union_type',
    ],
    [
      'a tool_choice without the function name',
      ask('oi', { tools: [weather], tool_choice: { type: 'function', function: {} } }),
      at('tool_choice', 'function', 'name'),
      'missing',
    ],
    [
      'a tool_choice naming a function not among tools',
      ask('oi', { tools: [weather], tool_choice: { type: 'function', function: { name: 'buscar' } } }),
      at('tool_choice'),
      'value_error',
    ],
    [
      "tool_choice 'required' without tools",
      ask('oi', { tool_choice: 'required' }),
      at('tool_choice'),
      'value_error',
    ],
    [
      'a response_format of an unknown type',
      ask('oi', { response_format: { type: 'xml' } }),
      at('response_format'),
      'union_tag_invalid',
    ],
    [
      'a json_schema format without json_schema',
      ask('oi', { response_format: { type: 'json_schema' } }),
      at('response_format', 'json_schema'),
      'missing',
    ],
    [
      'a json_schema format without name',
      ask('oi', { response_format: { type: 'json_schema', json_schema: { schema: { type: 'object' } } } }),
      at('response_format', 'json_schema', 'name'),
      'missing',
    ],
    [
      'a json_schema format whose schema is not an object',
      ask('oi', { response_format: { type: 'json_schema', json_schema: { name: 'r', schema: 'object' } } }),
      at('response_format', 'json_schema', 'schema'),
      'dict_type',
    ],
    [
      'a json_schema format whose strict is not a boolean',
      ask('oi', {
        response_format: { type: 'json_schema', json_schema: { name: 'r', schema: {}, strict: 'yes' } },
      }),
      at('response_format', 'json_schema', 'strict'),
      'bool_type',
    ],
    ['a fractional seed', ask('oi', { seed: 1.5 }), at('seed'), 'int_from_float'],
    ['a seed that is not a number', ask('oi', { seed: '42' }), at('seed'), 'int_type'],
    [
      'a frequency_penalty above 2',
      ask('oi', { frequency_penalty: 2.5 }),
      at('frequency_penalty'),
      'less_than_equal',
    ],
    [
      'a presence_penalty below -2',
      ask('oi', { presence_penalty: -3 }),
      at('presence_penalty'),
      'greater_than_equal',
    ],
    [
      'a penalty that is not a number',
      ask('oi', { presence_penalty: 'alta' }),
      at('presence_penalty'),
      'float_type',
    ],
  ])('refuses %s with a 422 naming its location, and bills nothing', async (_what, body, loc, type) => {
    const server = await start();
    const response = await chat(server, body);
    expect(response.status).toBe(422);
    const { detail } = await readJson(response);
    expect(detail).toEqual([{ loc, msg: expect.any(String), type }]);
    expect(server.stats().billed.calls).toBe(0);
    expect(() => fakePromptTokensOf(body)).toThrow(RangeError);
  });

  it('says what Maritaca takes instead of an image_url block', async () => {
    const server = await start();
    const response = await chat(
      server,
      ask([{ type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }]),
    );
    expect((await readJson(response)).detail).toEqual([
      {
        loc: ['body', 'messages', 0, 'content', 0],
        msg: "Input tag 'image_url' found using 'type' does not match any of the expected tags: 'text', 'image'",
        type: 'union_tag_invalid',
      },
    ]);
  });

  it('reports every bad field at once, and cross-field checks only when the fields are valid', async () => {
    const server = await start();
    const response = await chat(
      server,
      ask([{ type: 'image_url' }], {
        seed: 'x',
        tool_choice: { type: 'function', function: { name: 'nada' } },
      }),
    );
    // The tool_choice naming no tool is not reported while other fields are wrong: pydantic runs
    // model validators after the fields pass.
    expect((await readJson(response)).detail.map((issue: { loc: unknown[] }) => issue.loc.join('.'))).toEqual(
      ['body.messages.0.content.0', 'body.seed'],
    );
  });

  it('accepts every chat feature well formed', async () => {
    const server = await start();
    const body = {
      ...afterToolCall(),
      messages: [
        { role: 'system', content: [{ type: 'text', text: 'Seja breve.' }] },
        ...(afterToolCall().messages as object[]),
        { role: 'user', content: [{ type: 'text', text: 'E estas fotos?' }, imageBlock, urlImageBlock] },
      ],
      tools: [weather, search, { type: 'function', function: { name: 'sem-parametros' } }],
      tool_choice: 'auto',
      response_format: { type: 'text' },
      seed: 7,
      frequency_penalty: -2,
      presence_penalty: 2,
      max_tokens: null,
    };
    const completion = await answer(server, body);
    expect(completion.choices[0].message.content).toBe('Resposta para: E estas fotos?');
    expect(completion.choices[0].finish_reason).toBe('stop');
  });
});

describe('fake Maritaca chat features: answers', () => {
  it('answers a named tool_choice with one call whose arguments satisfy the parameters', async () => {
    const server = await start();
    const body = ask('Clima em Manaus amanhã?', {
      tools: [search, weather],
      tool_choice: { type: 'function', function: { name: 'consultar_clima' } },
    });
    const completion = await answer(server, body);
    const [choice] = completion.choices;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    expect(choice.message.tool_calls).toHaveLength(1);
    const [call] = choice.message.tool_calls;
    expect(call).toEqual({
      id: expect.stringMatching(/^call_[0-9a-f]{24}$/),
      type: 'function',
      function: { name: 'consultar_clima', arguments: expect.any(String) },
    });
    expect(satisfies(weather.function.parameters, call.function.arguments)).toBe(true);
    // Required properties only.
    expect(Object.keys(JSON.parse(call.function.arguments)).sort()).toEqual([
      'cidade',
      'data',
      'detalhes',
      'dias',
      'unidade',
    ]);
    expect(completion.usage.completion_tokens).toBe(
      tokens('consultar_clima') + tokens(call.function.arguments),
    );

    // The same request gets the same call; another request another id.
    const again = await answer(server, body);
    expect(again.choices[0].message.tool_calls[0]).toEqual(call);
    const other = await answer(server, { ...body, seed: 1 });
    expect(other.choices[0].message.tool_calls[0].id).not.toBe(call.id);
  });

  it("answers tool_choice 'required' with a call to the first tool", async () => {
    const server = await start();
    const completion = await answer(
      server,
      ask('Busque algo', { tools: [search, weather], tool_choice: 'required' }),
    );
    const [call] = completion.choices[0].message.tool_calls;
    expect(call.function.name).toBe('buscar');
    expect(satisfies(search.function.parameters, call.function.arguments)).toBe(true);
    expect(JSON.parse(call.function.arguments).limite).toBe(10);
  });

  it('calls a function without parameters with an empty object', async () => {
    const server = await start();
    const completion = await answer(
      server,
      ask('Agora', {
        tools: [{ type: 'function', function: { name: 'hora_atual' } }],
        tool_choice: 'required',
      }),
    );
    expect(completion.choices[0].message.tool_calls[0].function.arguments).toBe('{}');
  });

  it.each(['auto', 'none', undefined])(
    'answers text when tools are offered with tool_choice %s',
    async (mode) => {
      const server = await start();
      const completion = await answer(
        server,
        ask('Oi, tudo bem?', { tools: [weather], ...(mode ? { tool_choice: mode } : {}) }),
      );
      expect(completion.choices[0].message).toEqual({
        role: 'assistant',
        content: 'Resposta para: Oi, tudo bem?',
      });
      expect(completion.choices[0].finish_reason).toBe('stop');
    },
  );

  it("answers after a tool's result with text that quotes it", async () => {
    const server = await start();
    const body = afterToolCall();
    const completion = await answer(server, body);
    const content = completion.choices[0].message.content;
    expect(content).toBe(
      'Resposta para: Como está o clima em Recife? (resultado da ferramenta: 29 graus e sol)',
    );
    expect(completion.usage.completion_tokens).toBe(tokens(content));
    expect(completion.usage.prompt_tokens).toBe(fakePromptTokensOf(body));
  });

  const SCHEMAS: [string, Record<string, unknown>][] = [
    [
      'a flat object',
      {
        type: 'object',
        properties: {
          titulo: { type: 'string', maxLength: 5 },
          nota: { type: 'number', minimum: 0, maximum: 10 },
        },
        required: ['titulo', 'nota'],
        additionalProperties: false,
      },
    ],
    [
      'nested arrays of objects',
      {
        type: 'object',
        properties: {
          pessoas: {
            type: 'array',
            minItems: 2,
            items: {
              type: 'object',
              properties: {
                nome: { type: 'string', minLength: 10 },
                nascimento: { type: 'string', format: 'date' },
                email: { type: 'string', format: 'email' },
              },
              required: ['nome', 'nascimento', 'email'],
            },
          },
        },
        required: ['pessoas'],
      },
    ],
    [
      'enums, const, null and booleans',
      {
        type: 'object',
        properties: {
          sentimento: { enum: ['positivo', 'negativo', 'neutro'] },
          versao: { const: 2 },
          nada: { type: 'null' },
          ok: { type: 'boolean' },
          quando: { type: 'string', format: 'date-time' },
        },
        required: ['sentimento', 'versao', 'nada', 'ok', 'quando'],
      },
    ],
    [
      'references into $defs',
      {
        $defs: {
          item: { type: 'object', properties: { id: { type: 'integer', minimum: 100 } }, required: ['id'] },
        },
        type: 'object',
        properties: { itens: { type: 'array', items: { $ref: '#/$defs/item' }, minItems: 1 } },
        required: ['itens'],
      },
    ],
    [
      'a root array',
      { type: 'array', items: { type: 'integer', exclusiveMinimum: 0 }, minItems: 3, uniqueItems: true },
    ],
  ];

  it.each(SCHEMAS)(
    'answers a json_schema format for %s with JSON that satisfies it',
    async (_name, schema) => {
      const server = await start();
      const body = ask('Resuma', {
        response_format: { type: 'json_schema', json_schema: { name: 'resposta', schema, strict: true } },
      });
      const completion = await answer(server, body);
      const content = completion.choices[0].message.content;
      expect(satisfies(schema, content)).toBe(true);
      expect(completion.choices[0].finish_reason).toBe('stop');
      expect(completion.usage.completion_tokens).toBe(tokens(content));
      expect(completion.usage.prompt_tokens).toBe(fakePromptTokensOf(body));
    },
  );

  it('answers a json_object format with a JSON object echoing the question', async () => {
    const server = await start();
    const completion = await answer(
      server,
      ask('Qual a capital?', { response_format: { type: 'json_object' } }),
    );
    expect(JSON.parse(completion.choices[0].message.content)).toEqual({
      answer: 'Resposta para: Qual a capital?',
    });
  });

  it('prefers a forced tool call to a response format', async () => {
    const server = await start();
    const completion = await answer(
      server,
      ask('oi', { tools: [search], tool_choice: 'required', response_format: { type: 'json_object' } }),
    );
    expect(completion.choices[0].finish_reason).toBe('tool_calls');
  });

  it('cuts structured answers at max_tokens, with finish_reason length', async () => {
    const server = await start();
    const schema = (SCHEMAS[1] as [string, Record<string, unknown>])[1];
    const full = (
      await answer(
        server,
        ask('x', { response_format: { type: 'json_schema', json_schema: { name: 'r', schema } } }),
      )
    ).choices[0].message.content as string;
    const cut = await answer(
      server,
      ask('x', {
        max_tokens: 6,
        response_format: { type: 'json_schema', json_schema: { name: 'r', schema } },
      }),
    );
    expect(cut.choices[0].finish_reason).toBe('length');
    expect(cut.usage.completion_tokens).toBeLessThanOrEqual(6);
    expect(full.startsWith(cut.choices[0].message.content)).toBe(true);

    const call = await answer(server, ask('x', { max_tokens: 5, tools: [weather], tool_choice: 'required' }));
    expect(call.choices[0].finish_reason).toBe('length');
    expect(call.usage.completion_tokens).toBeLessThanOrEqual(5);
  });
});

describe('fake Maritaca chat features: invalidStructuredRate', () => {
  const schema = RECORD_SCHEMA;

  /** Structured requests of all three kinds in turn, and whether each answer was valid. */
  async function validity(server: FakeMaritacaServer, count: number): Promise<boolean[]> {
    const valid: boolean[] = [];
    for (let i = 0; i < count; i++) {
      const kind = i % 3;
      if (kind === 0) {
        const completion = await answer(
          server,
          ask(`pedido ${i}`, {
            response_format: { type: 'json_schema', json_schema: { name: 'r', schema } },
          }),
        );
        valid.push(satisfies(schema, completion.choices[0].message.content));
      } else if (kind === 1) {
        const completion = await answer(
          server,
          ask(`pedido ${i}`, { response_format: { type: 'json_object' } }),
        );
        valid.push(satisfies({ type: 'object' }, completion.choices[0].message.content));
      } else {
        const completion = await answer(
          server,
          ask(`pedido ${i}`, {
            tools: [{ type: 'function', function: { name: 'registrar', parameters: schema } }],
            tool_choice: 'required',
          }),
        );
        valid.push(satisfies(schema, completion.choices[0].message.tool_calls[0].function.arguments));
      }
    }
    return valid;
  }

  it('breaks about that share of structured answers, the same ones for the same seed', async () => {
    const first = await validity(await start({ seed: 2024, invalidStructuredRate: 0.2 }), 200);
    const invalid = first.filter((ok) => !ok).length;
    // 40 expected; the bounds are more than 2.5 standard deviations (5.7) away, and the seed
    // makes the figure fixed anyway.
    expect(invalid).toBeGreaterThanOrEqual(25);
    expect(invalid).toBeLessThanOrEqual(55);
    expect(await validity(await start({ seed: 2024, invalidStructuredRate: 0.2 }), 200)).toEqual(first);
    expect(await validity(await start({ seed: 99, invalidStructuredRate: 0.2 }), 200)).not.toEqual(first);
  });

  it('breaks answers in every way, and every answer at rate 1, none at rate 0', async () => {
    const server = await start({ seed: 5, invalidStructuredRate: 1 });
    expect(await validity(server, 30)).toEqual(Array(30).fill(false));
    const body = ask('x', { response_format: { type: 'json_schema', json_schema: { name: 'r', schema } } });
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const content = (await answer(server, body)).choices[0].message.content as string;
      let value: Record<string, unknown>;
      try {
        value = JSON.parse(content);
      } catch {
        seen.add('not_json');
        continue;
      }
      seen.add(!('nome' in value) ? 'missing_required' : 'wrong_type');
    }
    expect([...seen].sort()).toEqual(['missing_required', 'not_json', 'wrong_type']);

    server.configure({ invalidStructuredRate: 0 });
    expect(await validity(server, 12)).toEqual(Array(12).fill(true));
  });

  it('is set through POST /_config, refused outside 0..1, and leaves the other decisions alone', async () => {
    const server = await start({ seed: 3 });
    const config = (body: unknown): Promise<Response> =>
      fetch(`${server.url}/_config`, { method: 'POST', body: JSON.stringify(body) });
    expect((await config({ invalidStructuredRate: 1 })).status).toBe(200);
    expect(await validity(server, 3)).toEqual([false, false, false]);
    const refused = await config({ invalidStructuredRate: 1.5 });
    expect(refused.status).toBe(400);
    expect((await readJson(refused)).error.message).toMatch(/invalidStructuredRate/);
    expect(() => server.configure({ imageTokens: 1.5 })).toThrow(/imageTokens/);

    // The breaking draws come from their own stream: 500s fall on the same requests either way.
    const statuses = async (rate: number): Promise<number[]> => {
      const seeded = await start({ seed: 42, errorRate500: 0.5, invalidStructuredRate: rate });
      const seen: number[] = [];
      for (let i = 0; i < 20; i++) {
        seen.push((await chat(seeded, ask('x', { response_format: { type: 'json_object' } }))).status);
      }
      return seen;
    };
    const without = await statuses(0);
    expect(without).toContain(500);
    expect(await statuses(0.7)).toEqual(without);
  });
});

describe('fake Maritaca chat features: token counts', () => {
  const model = 'sabia-4';

  it('counts tools, response formats, tool calls, text blocks and images exactly', async () => {
    const server = await start({ imageTokens: 700, templateOverhead: { perRequest: 2, perMessage: 4 } });
    const responseFormat = {
      type: 'json_schema',
      json_schema: { name: 'clima', schema: weather.function.parameters },
    };
    const base = afterToolCall();
    const body = {
      ...base,
      messages: [
        { role: 'system', content: 'Você é um meteorologista.' },
        ...(base.messages as object[]),
        {
          role: 'user',
          content: [
            { type: 'text', text: 'E nestas fotos?' },
            imageBlock,
            { type: 'text', text: 'E esta?' },
            urlImageBlock,
          ],
        },
      ],
      tools: [weather, search],
      response_format: responseFormat,
    };
    // Counted by hand, with the tokenizer alone.
    const expected =
      2 +
      4 * 5 +
      tokens('Você é um meteorologista.') +
      tokens('Como está o clima em Recife?') +
      tokens('consultar_clima') +
      tokens('{"cidade":"Recife"}') +
      tokens('29 graus e sol') +
      tokens('E nestas fotos?') +
      tokens('E esta?') +
      2 * 700 +
      tokens(JSON.stringify([weather, search])) +
      tokens(JSON.stringify(responseFormat));
    const completion = await answer(server, body);
    expect(completion.usage.prompt_tokens).toBe(expected);
    expect(fakePromptTokensOf(body, server.behaviour())).toBe(expected);
    const content = completion.choices[0].message.content;
    expect(completion.usage.completion_tokens).toBe(tokens(content));
    expect(completion.usage.total_tokens).toBe(expected + tokens(content));
    expect(server.stats().billed.promptTokens).toBe(expected);
  });

  it('counts each image 1000 tokens by default, whatever it holds, and --image-tokens changes it', async () => {
    expect(DEFAULT_FAKE_IMAGE_TOKENS).toBe(1000);
    const server = await start();
    const one = ask([{ type: 'text', text: 'Descreva' }, imageBlock]);
    const two = ask([{ type: 'text', text: 'Descreva' }, imageBlock, urlImageBlock]);
    const usage = async (body: object): Promise<number> => (await answer(server, body)).usage.prompt_tokens;
    expect((await usage(two)) - (await usage(one))).toBe(1000);
    expect(await usage(one)).toBe(tokens('Descreva') + 1000 + 3 + 5);
    server.configure({ imageTokens: 0 });
    expect(await usage(two)).toBe(tokens('Descreva') + 3 + 5);
    expect(fakePromptTokensOf(two, server.behaviour())).toBe(tokens('Descreva') + 3 + 5);
  });

  it('adds nothing for a text format, and plain messages count as fakePromptTokens says', async () => {
    const server = await start();
    const messages = [
      { role: 'system', content: 'Seja breve.' },
      { role: 'user', content: 'Olá!' },
    ];
    const plain = { model, messages };
    const withText = { model, messages, response_format: { type: 'text' } };
    expect((await answer(server, withText)).usage.prompt_tokens).toBe(fakePromptTokens(messages, model));
    expect(fakePromptTokensOf(plain)).toBe(fakePromptTokens(messages, model));
    expect(fakePromptTokensOf(withText, { templateOverhead: DEFAULT_FAKE_TEMPLATE_OVERHEAD })).toBe(
      fakePromptTokens(messages, model),
    );
  });

  it('names the refused field when fakePromptTokensOf is given a body the fake would refuse', () => {
    expect(() => fakePromptTokensOf(ask([{ type: 'image_url', image_url: { url: 'x' } }]))).toThrow(
      'the fake refuses this body: body.messages.0.content.0:',
    );
  });
});

describe('fake Maritaca chat features with the openai SDK', () => {
  it("parses the fake's tool call, and continues the conversation with the tool's result", async () => {
    const server = await start();
    const client = new OpenAI({ apiKey: API_KEY, baseURL: server.url, maxRetries: 0 });
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Clima em Belém?' }];
    const tools = [weather] as OpenAI.Chat.ChatCompletionTool[];
    const completion = await client.chat.completions.create({
      model: 'sabia-4',
      messages,
      tools,
      tool_choice: { type: 'function', function: { name: 'consultar_clima' } },
      seed: 1,
    });
    const message = completion.choices[0]?.message;
    const call = message?.tool_calls?.[0];
    if (!message || call?.type !== 'function') throw new Error('expected a function call');
    expect(completion.choices[0]?.finish_reason).toBe('tool_calls');
    expect(satisfies(weather.function.parameters, call.function.arguments)).toBe(true);
    expect(JSON.parse(call.function.arguments).cidade).toEqual(expect.any(String));

    const followUp = await client.chat.completions.create({
      model: 'sabia-4',
      messages: [...messages, message, { role: 'tool', tool_call_id: call.id, content: 'Chuva à tarde' }],
      tools,
    });
    expect(followUp.choices[0]?.message.content).toContain('Chuva à tarde');
  });

  it('parses a json_schema answer and refuses an unconverted image_url part with a 422', async () => {
    const server = await start();
    const client = new OpenAI({ apiKey: API_KEY, baseURL: server.url, maxRetries: 0 });
    const schema = RECORD_SCHEMA;
    const completion = await client.chat.completions.create({
      model: 'sabiazinho-4',
      messages: [{ role: 'user', content: 'Cadastre' }],
      response_format: { type: 'json_schema', json_schema: { name: 'cadastro', schema, strict: true } },
    });
    expect(satisfies(schema, completion.choices[0]?.message.content ?? null)).toBe(true);

    await expect(
      client.chat.completions.create({
        model: 'sabia-4',
        messages: [
          {
            role: 'user',
            content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }],
          },
        ],
      }),
    ).rejects.toMatchObject({ status: 422 });
  });
});
