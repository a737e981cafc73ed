/**
 * Chat features in a batch: requests with content blocks, tools and JSON formats are validated
 * naming the field, converted to Maritaca's form, counted in the estimate, and answers are read
 * (tool calls parsed, structured output checked against its schema).
 */
import { estimateBatchCost } from '../../src/activities/estimate-cost';
import { readStructured, schemaProblem } from '../../src/activities/structured-output';
import { chatFeatureIssues, optionFeatureIssues } from '../../src/client/chat-features';
import { validateBatchInput } from '../../src/client/validate';
import {
  BUILT_IN_PRICES,
  DEFAULT_IMAGE_TOKEN_BOUND,
  batchRequestSchema,
  estimateInputOf,
  resolveCalls,
  validateWith,
  type BatchRequest,
  type CallMaritacaInput,
  type Tool,
} from '../../src/shared';
import { countTokens } from '../../src/tokenizer';

const PNG = 'iVBORw0KGgo=';
const invoiceSchema = {
  type: 'object',
  properties: { total: { type: 'number' }, currency: { type: 'string', enum: ['BRL', 'USD'] } },
  required: ['total', 'currency'],
  additionalProperties: false,
};
const extract: Tool = {
  type: 'function',
  function: { name: 'extract_invoice', description: 'Dados da nota', parameters: invoiceSchema },
};
const ask = (content: string): BatchRequest['messages'][number] => ({ role: 'user', content });

describe('requests with chat features', () => {
  test('the schema takes content blocks, tool messages and assistant tool calls', () => {
    const request = {
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Qual o total desta nota?' },
            { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
            { type: 'image', source: { type: 'url', url: 'https://example.com/nota.jpg' } },
          ],
        },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'c1', type: 'function', function: { name: 'extract_invoice', arguments: '{"total":1}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'c1', content: '{"ok":true}' },
      ],
      tools: [extract],
      toolChoice: 'auto',
      responseFormat: { type: 'json_schema', json_schema: { name: 'nota', schema: invoiceSchema } },
      seed: 7,
      frequencyPenalty: 0.5,
      presencePenalty: -0.5,
    };
    expect(validateWith(batchRequestSchema, request).ok).toBe(true);
  });

  test('bad blocks, tools and formats are refused naming the field', () => {
    const issues = (value: unknown) => {
      const result = validateWith(batchRequestSchema, value);
      return result.ok ? [] : result.issues.map((i) => i.path);
    };
    expect(
      issues({
        messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'ftp://x' } }] }],
      }),
    ).toEqual(['messages[0].content[0].image_url.url']);
    expect(
      issues({
        messages: [
          {
            role: 'user',
            content: [{ type: 'image', source: { type: 'base64', media_type: 'image/bmp', data: PNG } }],
          },
        ],
      }),
    ).toEqual(['messages[0].content[0].source.media_type']);
    expect(issues({ messages: [{ role: 'tool', content: 'x' }] })).toEqual(['messages[0].tool_call_id']);
    // Unpadded base64 is refused here as Maritaca's validation would refuse it.
    expect(
      issues({
        messages: [
          {
            role: 'user',
            content: [
              { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo' } },
            ],
          },
        ],
      }),
    ).toEqual(['messages[0].content[0].source.data']);
    expect(
      issues({
        messages: [
          {
            role: 'user',
            content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo' } }],
          },
        ],
      }),
    ).toEqual(['messages[0].content[0].image_url.url']);
    expect(
      issues({ messages: [ask('a')], tools: [{ type: 'function', function: { name: 'bad name' } }] }),
    ).toEqual(['tools[0].function.name']);
    expect(issues({ messages: [ask('a')], responseFormat: { type: 'xml' } })).toEqual([
      'responseFormat.type',
    ]);
  });

  test('what the schema cannot see is refused before anything starts', () => {
    expect(schemaProblem({ type: 'objekt' })).toMatch(/not a valid JSON schema/);
    expect(
      chatFeatureIssues({
        messages: [ask('a'), { role: 'tool', tool_call_id: 'nope', content: 'x' }],
        tools: [{ ...extract, function: { ...extract.function, parameters: { type: 'objekt' } } }],
        toolChoice: { type: 'function', function: { name: 'missing' } },
        responseFormat: { type: 'json_schema', json_schema: { name: 'n', schema: { type: 12 } } },
      }).map((i) => i.path),
    ).toEqual([
      'tools[0].function.parameters',
      'responseFormat.json_schema.schema',
      'toolChoice',
      'messages[1].tool_call_id',
    ]);
    expect(optionFeatureIssues({ toolChoice: 'required' }).map((i) => i.path)).toEqual([
      'options.toolChoice',
    ]);
    expect(() =>
      validateBatchInput(
        { requests: [{ messages: [ask('a')], toolChoice: { type: 'function', function: { name: 'f' } } }] },
        { prices: BUILT_IN_PRICES },
      ),
    ).toThrow(/requests\[0\]\.toolChoice: toolChoice asks for a tool call, but the request has no tools/);
  });

  test("OpenAI image blocks are sent in Maritaca's form; options give defaults", () => {
    const [call] = resolveCalls(
      [
        {
          messages: [
            {
              role: 'user',
              content: [
                { type: 'text', text: 'Descreva' },
                { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
                { type: 'image_url', image_url: { url: 'https://example.com/a.jpg' } },
              ],
            },
          ],
        },
      ],
      { tools: [extract], toolChoice: { type: 'function', function: { name: 'extract_invoice' } } },
    );
    expect(call!.messages[0]!.content).toEqual([
      { type: 'text', text: 'Descreva' },
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
      { type: 'image', source: { type: 'url', url: 'https://example.com/a.jpg' } },
    ]);
    expect(call!.tools).toEqual([extract]);
    expect(call!.toolChoice).toEqual({ type: 'function', function: { name: 'extract_invoice' } });
  });

  test('the estimate counts tool definitions exactly and images at the bound, each shown apart', () => {
    const plain = estimateBatchCost(
      estimateInputOf([{ messages: [ask('Qual o total?')] }], { model: 'sabia-4' }),
    );
    const withTools = estimateBatchCost(
      estimateInputOf([{ messages: [ask('Qual o total?')], tools: [extract] }], { model: 'sabia-4' }),
    );
    const toolTokens = countTokens(JSON.stringify([extract]), 'sabia-4')!;
    expect(withTools.toolTokens).toBe(toolTokens);
    expect(withTools.totalInputTokens - plain.totalInputTokens).toBe(toolTokens);
    expect(withTools.maxCost).toBe(withTools.totalCost);
    const image = estimateBatchCost(
      estimateInputOf(
        [
          {
            messages: [
              {
                role: 'user',
                content: [
                  { type: 'text', text: 'Qual o total?' },
                  { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
                ],
              },
            ],
          },
        ],
        { model: 'sabia-4' },
      ),
    );
    expect(image).toMatchObject({ images: 1, imageTokens: DEFAULT_IMAGE_TOKEN_BOUND });
    expect(image.totalInputTokens - plain.totalInputTokens).toBe(DEFAULT_IMAGE_TOKEN_BOUND);
    // Images are counted at a bound, so their requests never re-price from learned overheads.
    expect(image.perRequestContentTokens).toEqual([null]);
  });
});

describe('reading answers', () => {
  const call = (fields: Partial<CallMaritacaInput>): CallMaritacaInput => ({
    requestId: 'r',
    model: 'sabia-4',
    messages: [ask('a')],
    maxTokens: 100,
    ...fields,
  });

  test('a forced function call gives parsed arguments, checked against its parameters', () => {
    const forced = call({
      tools: [extract],
      toolChoice: { type: 'function', function: { name: 'extract_invoice' } },
    });
    const answer = (args: string) => ({
      content: null,
      tool_calls: [{ id: 'c1', type: 'function', function: { name: 'extract_invoice', arguments: args } }],
    });
    expect(readStructured(forced, answer('{"total":10.5,"currency":"BRL"}'))).toEqual({
      toolCalls: [{ id: 'c1', name: 'extract_invoice', arguments: { total: 10.5, currency: 'BRL' } }],
      parsed: { total: 10.5, currency: 'BRL' },
    });
    expect(readStructured(forced, answer('{"total":"dez"}')).problem).toMatch(
      /does not match the schema: answer must have required property 'currency', answer\/total must be number/,
    );
    expect(readStructured(forced, answer('{total')).problem).toMatch(/not JSON/);
    expect(readStructured(forced, { content: 'sem chamada' }).problem).toMatch(/did not call the function/);
  });

  test('JSON formats are parsed and checked; plain answers have nothing to check', () => {
    const schema = call({
      responseFormat: { type: 'json_schema', json_schema: { name: 'n', schema: invoiceSchema } },
    });
    expect(readStructured(schema, { content: '{"total":1,"currency":"USD"}' })).toEqual({
      parsed: { total: 1, currency: 'USD' },
    });
    expect(readStructured(schema, { content: '{"total":1,"currency":"EUR"}' }).problem).toMatch(
      /allowed values/,
    );
    const object = call({ responseFormat: { type: 'json_object' } });
    expect(readStructured(object, { content: '[1]' }).problem).toBeUndefined();
    expect(readStructured(object, { content: '"texto"' }).problem).toMatch(/not an object/);
    expect(readStructured(call({}), { content: 'olá' })).toEqual({});
  });
});
