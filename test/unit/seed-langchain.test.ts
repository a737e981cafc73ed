/**
 * The seed helpers' LangChain parity, without a server: message forms, tool forms, tool choice
 * by name, and what each structured-output method turns into.
 */
import { InvalidBatchInputError, estimateSeedInputs, parsedOf, type ChatResult } from '../../src';
import { toChatMessage, toOpenAITool, toToolChoice } from '../../src/client/langchain-messages';
import { seedBatchOptions, seedRequests } from '../../src/client/seed-helpers';

const PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

const pessoa = {
  title: 'Pessoa',
  description: 'Dados de uma pessoa citada no texto',
  type: 'object',
  properties: { nome: { type: 'string' }, idade: { type: 'integer' } },
  required: ['nome', 'idade'],
};

function issuesOf(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidBatchInputError);
    return [...(err as InvalidBatchInputError).issues];
  }
  throw new Error('expected InvalidBatchInputError');
}

describe('LangChain-style messages', () => {
  test('tuples, type names, LangChain role names and bare strings map as LangChain maps them', () => {
    expect(toChatMessage(['human', 'Olá'])).toEqual({ role: 'user', content: 'Olá' });
    expect(toChatMessage(['system', 'Seja breve'])).toEqual({ role: 'system', content: 'Seja breve' });
    expect(toChatMessage(['ai', 'Oi'])).toEqual({ role: 'assistant', content: 'Oi' });
    expect(toChatMessage({ type: 'human', content: 'a' })).toEqual({ role: 'user', content: 'a' });
    expect(toChatMessage({ role: 'human', content: 'a' })).toEqual({ role: 'user', content: 'a' });
    expect(toChatMessage({ type: 'developer', content: 'a' })).toEqual({ role: 'system', content: 'a' });
    expect(toChatMessage('só texto')).toEqual({ role: 'user', content: 'só texto' });
    expect(toChatMessage({ role: 'user', content: 'já no formato' })).toEqual({
      role: 'user',
      content: 'já no formato',
    });
  });

  test("an ai message's LangChain tool calls become OpenAI wire calls; an empty list is dropped", () => {
    expect(
      toChatMessage({
        type: 'ai',
        content: '',
        tool_calls: [{ id: 'c1', name: 'clima', args: { cidade: 'Recife' }, type: 'tool_call' }],
      }),
    ).toEqual({
      role: 'assistant',
      content: '',
      tool_calls: [
        { id: 'c1', type: 'function', function: { name: 'clima', arguments: '{"cidade":"Recife"}' } },
      ],
    });
    const wire = { id: 'c2', type: 'function' as const, function: { name: 'f', arguments: '{}' } };
    expect(toChatMessage({ type: 'ai', content: null, tool_calls: [wire] }).tool_calls).toEqual([wire]);
    expect(toChatMessage({ type: 'ai', content: 'oi', tool_calls: [] })).toEqual({
      role: 'assistant',
      content: 'oi',
    });
    expect(toChatMessage({ type: 'tool', content: '28 °C', tool_call_id: 'c1' })).toEqual({
      role: 'tool',
      content: '28 °C',
      tool_call_id: 'c1',
    });
  });

  test("LangChain's serialised form {type, data} is read, extra fields are dropped", () => {
    const dumped = {
      type: 'human' as const,
      data: { content: 'oi', additional_kwargs: {}, response_metadata: {}, id: null },
    };
    expect(toChatMessage(dumped)).toEqual({ role: 'user', content: 'oi' });
  });

  test("content blocks pass through; LangChain's standard image blocks and bare strings are converted", () => {
    const maritaca = {
      type: 'image' as const,
      source: { type: 'url' as const, url: 'https://x.test/a.png' },
    };
    const openai = { type: 'image_url' as const, image_url: { url: `data:image/png;base64,${PNG}` } };
    const message = toChatMessage({
      type: 'human',
      content: [
        'Descreva:',
        maritaca,
        openai,
        { type: 'image', base64: PNG, mime_type: 'image/png' },
        { type: 'image', url: 'https://x.test/b.jpg' },
        { type: 'image', source_type: 'base64', data: PNG, mime_type: 'image/webp' },
      ],
    });
    expect(message.content).toEqual([
      { type: 'text', text: 'Descreva:' },
      maritaca,
      openai,
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
      { type: 'image', source: { type: 'url', url: 'https://x.test/b.jpg' } },
      { type: 'image', source: { type: 'base64', media_type: 'image/webp', data: PNG } },
    ]);
  });

  test('what cannot be read reaches validation, which names the field', () => {
    const bad = [
      [['robot', 'oi'] as unknown as ['human', string]],
      [{ type: 'tool', content: 'x' }],
    ] as const;
    const issues = issuesOf(() => estimateSeedInputs(bad));
    expect(issues.map((i) => i.path)).toEqual([
      'requests[0].messages[0].role',
      'requests[1].messages[0].tool_call_id',
    ]);
  });
});

describe('tools and tool choice', () => {
  test('LangChain tools become OpenAI tools; OpenAI tools stay as they are', () => {
    const parameters = { type: 'object', properties: { cidade: { type: 'string' } } };
    expect(toOpenAITool({ name: 'clima', description: 'O clima', parameters })).toEqual({
      type: 'function',
      function: { name: 'clima', description: 'O clima', parameters },
    });
    const openai = { type: 'function' as const, function: { name: 'clima', parameters } };
    expect(toOpenAITool(openai)).toBe(openai);
  });

  test('a bare function name forces it; the three modes stay; any is required', () => {
    expect(toToolChoice('clima')).toEqual({ type: 'function', function: { name: 'clima' } });
    expect(toToolChoice('auto')).toBe('auto');
    expect(toToolChoice('none')).toBe('none');
    expect(toToolChoice('required')).toBe('required');
    expect(toToolChoice('any')).toBe('required');
    const forced = { type: 'function' as const, function: { name: 'x' } };
    expect(toToolChoice(forced)).toBe(forced);
  });

  test('a forced name that is not among the tools is refused at options.toolChoice', () => {
    const issues = issuesOf(() =>
      estimateSeedInputs(['oi'], {
        tools: [{ name: 'clima', parameters: { type: 'object' } }],
        toolChoice: 'previsao',
      }),
    );
    expect(issues).toEqual([{ path: 'options.toolChoice', message: expect.stringContaining('"previsao"') }]);
  });
});

describe('structuredOutput', () => {
  test('functionCalling (the default): a function named by the title, forced; title and description leave the parameters', () => {
    const options = seedBatchOptions({ structuredOutput: { schema: pessoa } }, false);
    expect(options.tools).toEqual([
      {
        type: 'function',
        function: {
          name: 'Pessoa',
          description: 'Dados de uma pessoa citada no texto',
          parameters: { type: 'object', properties: pessoa.properties, required: ['nome', 'idade'] },
        },
      },
    ]);
    expect(options.toolChoice).toEqual({ type: 'function', function: { name: 'Pessoa' } });
    expect(options.responseFormat).toBeUndefined();
    // Prompts are left alone: the function's schema says what to extract.
    expect(seedRequests(['João tem 25 anos'], { structuredOutput: { schema: pessoa } })[0]!.messages).toEqual(
      [{ role: 'user', content: 'João tem 25 anos' }],
    );
  });

  test('functionCalling: name wins, then a usable title, then extract; other tools are kept', () => {
    const untitled = { type: 'object', properties: { x: { type: 'number' } } };
    expect(seedBatchOptions({ structuredOutput: { schema: untitled } }, false).toolChoice).toEqual({
      type: 'function',
      function: { name: 'extract' },
    });
    const spaced = { ...untitled, title: 'Dados da pessoa' };
    expect(seedBatchOptions({ structuredOutput: { schema: spaced } }, false).toolChoice).toEqual({
      type: 'function',
      function: { name: 'extract' },
    });
    const options = seedBatchOptions(
      {
        tools: [{ name: 'clima', parameters: { type: 'object' } }],
        structuredOutput: { schema: pessoa, name: 'extrair_pessoa' },
      },
      false,
    );
    expect(options.tools!.map((t) => t.function.name)).toEqual(['clima', 'extrair_pessoa']);
    expect(options.toolChoice).toEqual({ type: 'function', function: { name: 'extrair_pessoa' } });
  });

  test('jsonMode: a json_object format with the schema, and an instruction when no message mentions JSON', () => {
    const structuredOutput = { schema: pessoa, method: 'jsonMode' as const };
    expect(seedBatchOptions({ structuredOutput }, false)).toMatchObject({
      responseFormat: { type: 'json_object', schema: pessoa },
    });
    expect(seedBatchOptions({ structuredOutput }, false).tools).toBeUndefined();
    const [alone, withSystem, withBlocks, mentions] = seedRequests(
      [
        'João tem 25 anos',
        [
          ['system', 'Extraia os dados.'],
          ['human', 'Ana tem 30 anos'],
        ],
        [{ role: 'system', content: [{ type: 'text', text: 'Extraia.' }] }, 'Ana tem 30 anos'],
        [['human', 'Responda em json: Ana tem 30 anos']],
      ],
      { structuredOutput },
    );
    expect(alone!.messages).toHaveLength(2);
    expect(alone!.messages[0]).toEqual({ role: 'system', content: expect.stringContaining('JSON') });
    expect(alone!.messages[0]!.content).toContain(JSON.stringify(pessoa));
    expect(withSystem!.messages).toHaveLength(2);
    expect(withSystem!.messages[0]!.content).toMatch(/^Extraia os dados\.\n\n.*JSON/s);
    expect(withBlocks!.messages[0]!.content).toEqual([
      { type: 'text', text: 'Extraia.' },
      { type: 'text', text: expect.stringContaining('JSON') },
    ]);
    expect(mentions!.messages).toEqual([{ role: 'user', content: 'Responda em json: Ana tem 30 anos' }]);
  });

  test('jsonSchema: a json_schema format named like the function would be', () => {
    const options = seedBatchOptions({ structuredOutput: { schema: pessoa, method: 'jsonSchema' } }, false);
    expect(options.responseFormat).toEqual({
      type: 'json_schema',
      json_schema: { name: 'Pessoa', schema: pessoa },
    });
    expect(options.toolChoice).toBeUndefined();
  });

  test('contradictions and bad schemas are refused under options.', () => {
    expect(
      issuesOf(() =>
        seedBatchOptions(
          {
            tools: [{ name: 'Pessoa', parameters: { type: 'object' } }],
            toolChoice: 'auto',
            responseFormat: { type: 'json_object' },
            structuredOutput: { schema: pessoa },
          },
          false,
        ),
      ).map((i) => i.path),
    ).toEqual(['options.responseFormat', 'options.toolChoice', 'options.structuredOutput.name']);
    expect(
      issuesOf(() =>
        seedBatchOptions(
          {
            structuredOutput: {
              schema: { type: 'objeto' },
              method: 'xml' as 'jsonMode',
              name: 'com espaço',
            },
          },
          false,
        ),
      ).map((i) => i.path),
    ).toEqual([
      'options.structuredOutput.method',
      'options.structuredOutput.schema',
      'options.structuredOutput.name',
    ]);
  });

  test('the estimate counts the function the batch will send', () => {
    const plain = estimateSeedInputs(['João tem 25 anos']);
    const structured = estimateSeedInputs(['João tem 25 anos'], { structuredOutput: { schema: pessoa } });
    expect(structured.toolTokens).toBeGreaterThan(0);
    expect(structured.totalInputTokens).toBe(plain.totalInputTokens + structured.toolTokens!);
  });

  test('parsedOf gives the parsed value and refuses a result without one', () => {
    const result: ChatResult = {
      generations: [
        { text: '', message: { role: 'assistant', content: '' }, generationInfo: { finishReason: 'stop' } },
      ],
      llmOutput: { tokenUsage: { promptTokens: 1, completionTokens: 1, totalTokens: 2 }, model: 'sabia-4' },
    };
    expect(() => parsedOf(result)).toThrow(/no structured value/);
    expect(parsedOf<{ nome: string }>({ ...result, parsed: { nome: 'João' } }).nome).toBe('João');
  });
});
