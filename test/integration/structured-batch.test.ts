/**
 * Chat features through the whole batch (client, workflow, worker, fake Maritaca): structured
 * extraction with re-asks, forced tool calls, images from an OpenAI batch file, and refusals of
 * bad tools, schemas and image blocks before anything starts.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Ajv from 'ajv';
import { FailureTypes, InvalidBatchFileError, InvalidBatchInputError, type BatchRequest } from '../../src';
import { startTestContext, type TestContext } from '../helpers/context';

const invoice = {
  type: 'object',
  properties: {
    total: { type: 'number', minimum: 0 },
    supplier: { type: 'string', minLength: 1 },
    items: { type: 'array', items: { type: 'string' }, minItems: 1 },
    paid: { type: 'boolean' },
  },
  required: ['total', 'supplier', 'items', 'paid'],
};
const validInvoice = new Ajv().compile(invoice);
const PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

const notes = (n: number): BatchRequest[] =>
  Array.from({ length: n }, (_, i) => ({
    id: `nota-${i}`,
    messages: [{ role: 'user', content: `Nota fiscal ${i}: R$ ${100 + i},00 da Padaria ${i}, paga.` }],
    maxTokens: 200,
  }));

describe('chat features in a batch', () => {
  let ctx: TestContext;
  let dir: string;

  beforeAll(async () => {
    ctx = await startTestContext({ latencyMs: 5, seed: 21 });
    dir = mkdtempSync(path.join(os.tmpdir(), 'structured-batch-'));
  });
  afterAll(async () => {
    await ctx?.close();
  });
  beforeEach(() => {
    ctx.fake.reset();
    ctx.fake.configure({ invalidStructuredRate: null, invalidStructuredFirstOnly: null });
  });

  test('50 extractions with a JSON schema, 20% of first answers broken: every request ends with a valid parsed object', async () => {
    ctx.fake.configure({ invalidStructuredRate: 0.2, invalidStructuredFirstOnly: true });
    const handle = await ctx.batches.start(notes(50), {
      model: 'sabiazinho-4',
      maxConcurrency: 10,
      autoApproveBelow: 10,
      responseFormat: { type: 'json_schema', json_schema: { name: 'invoice', schema: invoice } },
    });
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(result.results.every((r) => r.ok)).toBe(true);
    for (const r of result.results) if (r.ok) expect(validInvoice(r.result.parsed)).toBe(true);
    const asked = result.results.reduce((sum, r) => sum + r.attempts, 0);
    const stats = ctx.fake.stats();
    // Every re-ask went to Maritaca and was billed, and the batch counted each one.
    expect(asked).toBeGreaterThan(50);
    expect(stats.billed.calls).toBe(asked);
    expect(result.actualCost).toBeCloseTo(stats.billed.costBRL, 9);
    console.log(`structured: 50 requests, ${asked - 50} re-asks, R$ ${result.actualCost}`);
  });

  test('a forced function call returns its arguments parsed', async () => {
    const handle = await ctx.batches.start(notes(3), {
      autoApproveBelow: 10,
      tools: [{ type: 'function', function: { name: 'extract_invoice', parameters: invoice } }],
      toolChoice: { type: 'function', function: { name: 'extract_invoice' } },
    });
    const result = await handle.result();
    expect(result.status).toBe('completed');
    for (const r of result.results) {
      if (!r.ok) throw new Error(r.error.message);
      expect(r.result.toolCalls).toHaveLength(1);
      expect(r.result.toolCalls![0]!.name).toBe('extract_invoice');
      expect(validInvoice(r.result.toolCalls![0]!.arguments)).toBe(true);
      expect(r.result.parsed).toEqual(r.result.toolCalls![0]!.arguments);
      expect(r.result.generations[0]!.message.tool_calls?.[0]?.function.name).toBe('extract_invoice');
    }
    const estimate = result.estimate!;
    expect(estimate.toolTokens).toBeGreaterThan(0);
  });

  test('answers that never match fail as MaritacaInvalidStructuredOutput after the re-asks', async () => {
    ctx.fake.configure({ invalidStructuredRate: 1 });
    const handle = await ctx.batches.start(notes(2), {
      autoApproveBelow: 10,
      returnExceptions: true,
      structuredOutputRetries: 1,
      responseFormat: { type: 'json_schema', json_schema: { name: 'invoice', schema: invoice } },
    });
    const result = await handle.result();
    for (const r of result.results) {
      expect(r.ok).toBe(false);
      if (r.ok) continue;
      expect(r.error.type).toBe(FailureTypes.InvalidStructuredOutput);
      expect(r.attempts).toBe(2);
    }
    expect(ctx.fake.stats().billed.calls).toBe(4);
    expect(result.actualCost).toBeCloseTo(ctx.fake.stats().billed.costBRL, 9);
  });

  test('images from an OpenAI batch file (data URIs) reach Maritaca in its own form', async () => {
    const file = path.join(dir, 'images.jsonl');
    const line = (i: number) =>
      JSON.stringify({
        custom_id: `img-${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: {
          model: 'sabia-4',
          max_tokens: 50,
          messages: [
            {
              role: 'user',
              content: [
                { type: 'text', text: `O que há na imagem ${i}?` },
                { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
              ],
            },
          ],
        },
      });
    writeFileSync(file, [0, 1, 2].map(line).join('\n') + '\n');
    const handle = await ctx.batches.startFromFile(file, { autoApproveBelow: 10 });
    const result = await handle.result();
    // The fake refuses OpenAI's image_url blocks with a 422: success means they were converted.
    expect(result.status).toBe('completed');
    expect(result.results.every((r) => r.ok)).toBe(true);
    expect(result.estimate).toMatchObject({ images: 3, imageTokens: 6000 });
    expect(ctx.fake.stats().byStatus['422'] ?? 0).toBe(0);
  });

  test('bad tools, schemas and image blocks are refused before anything starts, by line and field', async () => {
    const file = path.join(dir, 'bad.jsonl');
    writeFileSync(
      file,
      [
        JSON.stringify({
          id: 'a',
          messages: [{ role: 'user', content: 'x' }],
          tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'objekt' } } }],
        }),
        JSON.stringify({
          id: 'b',
          messages: [{ role: 'user', content: 'x' }],
          response_format: { type: 'json_schema', json_schema: { name: 'n', schema: { required: 'total' } } },
        }),
        JSON.stringify({
          id: 'c',
          messages: [
            {
              role: 'user',
              content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png' } }],
            },
          ],
        }),
        JSON.stringify({
          id: 'd',
          messages: [{ role: 'user', content: 'x' }],
          tools: [{ type: 'function', function: { name: 'f' } }],
          tool_choice: { type: 'function', function: { name: 'g' } },
        }),
      ].join('\n'),
    );
    const error = await ctx.batches.startFromFile(file, {}).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(InvalidBatchFileError);
    expect((error as InvalidBatchFileError).problems.map((p) => [p.line, p.field])).toEqual([
      [1, 'tools[0].function.parameters'],
      [2, 'response_format.json_schema.schema'],
      [3, 'messages[0].content[0].source.data'],
      [4, 'tool_choice'],
    ]);
    const inline = await ctx.batches
      .start([{ messages: [{ role: 'user', content: 'x' }], toolChoice: 'required' }], {})
      .catch((err: unknown) => err);
    expect(inline).toBeInstanceOf(InvalidBatchInputError);
    expect((inline as Error).message).toMatch(/requests\[0\]\.toolChoice/);
    expect(ctx.fake.stats().totalRequests).toBe(0);
  });
});
