/**
 * The guide's helpers with what langchain-maritaca adds around them: structured output
 * (`with_structured_output`), LangChain-style messages and tuples, tools in LangChain form,
 * against the dev server and the fake Maritaca.
 */
import Ajv from 'ajv';
import { randomUUID } from 'node:crypto';
import {
  InvalidBatchInputError,
  MaritacaRequestError,
  parsedOf,
  type ChatResult,
  type MaritacaBatchClient,
  type SeedInput,
} from '../../src';
import { startTestContext, type TestContext } from '../helpers/context';

const PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

interface Pessoa {
  nome: string;
  idade: number;
  cidade: string;
}

const pessoaSchema = {
  title: 'Pessoa',
  description: 'Uma pessoa citada no texto',
  type: 'object',
  properties: {
    nome: { type: 'string', minLength: 1 },
    idade: { type: 'integer', minimum: 0 },
    cidade: { type: 'string' },
  },
  required: ['nome', 'idade', 'cidade'],
  additionalProperties: false,
};

const textos = [
  'João tem 25 anos e mora em Belo Horizonte.',
  'Maria, 31 anos, vive em Recife.',
  'Pedro tem 47 anos e mora em Porto Alegre.',
  'Ana mora em Manaus e tem 19 anos.',
];

const contentOf = (r: ChatResult): string => r.generations[0]!.message.content;

describe('the guide with structured output, LangChain messages and tools', () => {
  let ctx: TestContext;
  let model: MaritacaBatchClient;
  const validatePessoa = new Ajv({ strict: false }).compile(pessoaSchema);

  beforeAll(async () => {
    ctx = await startTestContext({ latencyMs: 20 });
    model = ctx.batches;
  });
  afterAll(async () => {
    await ctx?.close();
  });
  beforeEach(() => {
    ctx.fake.reset();
    ctx.fake.configure({ latencyMs: 20, errorRate500: null });
  });

  test('Extração (functionCalling, the default): tuples in, parsed Pessoa objects out', async () => {
    const inputs: SeedInput[] = textos.map((texto) => [
      ['system', 'Extraia os dados da pessoa citada.'],
      ['human', texto],
    ]);
    const resultados = await model.abatchWithConcurrency(inputs, {
      maxConcurrency: 3,
      structuredOutput: { schema: pessoaSchema },
    });
    expect(resultados).toHaveLength(textos.length);
    const pessoas = resultados.map((r) => parsedOf<Pessoa>(r));
    for (const [i, pessoa] of pessoas.entries()) {
      expect(validatePessoa(pessoa)).toBe(true);
      // The function LangChain would bind: named by the schema's title, forced, its arguments parsed.
      const result = resultados[i]!;
      expect(result.toolCalls).toEqual([{ id: expect.any(String), name: 'Pessoa', arguments: pessoa }]);
      expect(result.generations[0]!.message.tool_calls![0]!.function.name).toBe('Pessoa');
      expect(result.generations[0]!.generationInfo.finishReason).toBe('tool_calls');
    }
    expect(ctx.fake.stats().peakConcurrency).toBeLessThanOrEqual(3);
  });

  test('Extração (jsonMode): JSON content checked against the schema; batchWithProgress hears parsed results', async () => {
    // The fake answers a json_object format with {"answer": "Resposta para: <question>"}: the
    // schema says that shape, so the check against it is real.
    const respostaSchema = {
      type: 'object',
      properties: { answer: { type: 'string', pattern: '^Resposta para: ' } },
      required: ['answer'],
    };
    const inputs: SeedInput[] = textos.map((texto) => [{ type: 'human', content: texto }]);
    const ouvidos: unknown[] = [];
    const resultados = await model.batchWithProgress(inputs, {
      maxConcurrency: 2,
      structuredOutput: { schema: respostaSchema, method: 'jsonMode' },
      callback: (_concluido, _total, resultado) => {
        ouvidos.push(parsedOf(resultado));
      },
    });
    expect(ouvidos).toHaveLength(textos.length);
    resultados.forEach((resultado, i) => {
      const valor = parsedOf<{ answer: string }>(resultado);
      expect(valor.answer).toContain(textos[i]);
      expect(JSON.parse(contentOf(resultado))).toEqual(valor);
      expect(resultado.toolCalls).toBeUndefined();
    });
  });

  test('Extração (jsonSchema): a json_schema format; returnExceptions keeps the parsed slots', async () => {
    const inputs: SeedInput[] = [...textos.slice(0, 2), 'Esta falha [[fake-status:400]]'];
    const resultados = await model.abatchWithConcurrency(inputs, {
      returnExceptions: true,
      structuredOutput: { schema: pessoaSchema, method: 'jsonSchema' },
    });
    const valores = resultados.map((r) => (r instanceof Error ? r : parsedOf<Pessoa>(r)));
    expect(validatePessoa(valores[0])).toBe(true);
    expect(validatePessoa(valores[1])).toBe(true);
    expect(valores[2]).toBeInstanceOf(MaritacaRequestError);
  });

  test('LangChain-style message objects: a tool call answered by a tool message, an image, a serialised human message', async () => {
    const clima = {
      name: 'buscar_clima',
      description: 'Temperatura atual de uma cidade',
      parameters: { type: 'object', properties: { cidade: { type: 'string' } }, required: ['cidade'] },
    };
    const inputs: SeedInput[] = [
      [
        { type: 'system', content: 'Você responde sobre o clima.' },
        { type: 'human', content: 'Como está o tempo em Recife?' },
        {
          type: 'ai',
          content: '',
          tool_calls: [{ id: 'call_1', name: 'buscar_clima', args: { cidade: 'Recife' }, type: 'tool_call' }],
        },
        { type: 'tool', content: '29 °C, ensolarado', tool_call_id: 'call_1' },
      ],
      [
        {
          type: 'human',
          content: [
            { type: 'text', text: 'O que há nesta imagem?' },
            { type: 'image', base64: PNG, mime_type: 'image/png' },
          ],
        },
      ],
      [{ role: 'human', content: 'Pergunta em formato de dicionário' }],
      ['Pergunta solta como string'],
      [{ type: 'human', data: { content: 'Pergunta serializada' } }],
    ];
    const resultados = await model.abatchWithConcurrency(inputs, { tools: [clima] });
    expect(contentOf(resultados[0]!)).toContain('resultado da ferramenta: 29 °C, ensolarado');
    expect(contentOf(resultados[1]!)).toContain('O que há nesta imagem?');
    expect(contentOf(resultados[2]!)).toContain('Pergunta em formato de dicionário');
    expect(contentOf(resultados[3]!)).toContain('Pergunta solta como string');
    expect(contentOf(resultados[4]!)).toContain('Pergunta serializada');
    // No tool forced: the model answers text, and nothing structured is claimed.
    resultados.forEach((r) => expect(r.parsed).toBeUndefined());
  });

  test('a tool in LangChain form forced by its bare name: the call and its parsed arguments', async () => {
    const parameters = {
      type: 'object',
      properties: { cidade: { type: 'string', minLength: 1 }, unidade: { enum: ['celsius', 'fahrenheit'] } },
      required: ['cidade', 'unidade'],
    };
    const resultados = await model.abatchWithConcurrency(
      [[['human', 'Qual a temperatura em Curitiba?']], [['human', 'Qual a temperatura em Natal?']]],
      {
        tools: [
          { name: 'agendar', parameters: { type: 'object' } },
          { name: 'buscar_clima', description: 'Temperatura atual', parameters },
        ],
        toolChoice: 'buscar_clima',
      },
    );
    const validate = new Ajv({ strict: false }).compile(parameters);
    for (const resultado of resultados) {
      expect(resultado.toolCalls).toHaveLength(1);
      const [call] = resultado.toolCalls!;
      expect(call!.name).toBe('buscar_clima');
      expect(validate(call!.arguments)).toBe(true);
      expect(parsedOf(resultado)).toEqual(call!.arguments);
    }
  });

  test('Combinar com estimativa de custo: the estimate with structuredOutput is the one the batch runs under', async () => {
    const inputs: SeedInput[] = textos.map((texto) => [['human', texto]]);
    const structuredOutput = { schema: pessoaSchema };
    const estimativa = await model.abatchEstimateCost(inputs, { structuredOutput });
    const semFuncao = await model.abatchEstimateCost(inputs);
    expect(estimativa.toolTokens).toBeGreaterThan(0);
    expect(estimativa.totalInputTokens).toBeGreaterThan(semFuncao.totalInputTokens);
    const batchId = `guia-extracao-${randomUUID()}`;
    await model.abatchWithConcurrency(inputs, { structuredOutput, batchId });
    const progress = await model.getHandle(batchId).progress();
    expect(progress.estimate!.totalCost).toBe(estimativa.totalCost);
    expect(progress.actualCost).toBeLessThanOrEqual(estimativa.totalCost);
  });

  test('contradictory options are refused before anything starts', async () => {
    const error = await model
      .abatchWithConcurrency(['oi'], { structuredOutput: { schema: pessoaSchema }, toolChoice: 'auto' })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(InvalidBatchInputError);
    expect((error as InvalidBatchInputError).issues.map((i) => i.path)).toEqual(['options.toolChoice']);
    const unknown = await model
      .abatchWithConcurrency([[['robot', 'oi'] as unknown as ['human', string]]])
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect((unknown as InvalidBatchInputError).issues.map((i) => i.path)).toEqual([
      'requests[0].messages[0].role',
    ]);
    expect(ctx.fake.stats().totalRequests).toBe(0);
  });
});
