/**
 * The client refuses a model its price table does not know, listing the known ones, before any
 * workflow starts; and starts a batch naming a model a prices file adds.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import {
  BUILT_IN_PRICES,
  InvalidBatchFileError,
  InvalidBatchInputError,
  InvalidPriceTableError,
  KNOWN_MODELS,
  MaritacaBatchClient,
  estimateBatchCost,
  estimateInputOf,
  loadPriceTable,
  parsePriceTable,
  type BatchInput,
  type BatchRequest,
} from '../../src';
import { questions, startTestContext, type TestContext } from '../helpers/context';

const TASK_QUEUE = 'prices-file-never-polled';
const question: BatchRequest = { messages: [{ role: 'user', content: 'Olá' }] };
const builtInList = `must be one of ${KNOWN_MODELS.join(', ')}`;
const withSabia5List = `must be one of ${[...KNOWN_MODELS, 'sabia-5'].join(', ')}`;

describe('the client checks models against its price table before any workflow starts', () => {
  let dir: string;
  let pricesFile: string;
  let connection: Connection;
  let temporal: Client;
  let builtIn: MaritacaBatchClient;
  let withFile: MaritacaBatchClient;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'prices-file-it-'));
    pricesFile = path.join(dir, 'prices.json');
    writeFileSync(
      pricesFile,
      JSON.stringify({
        checkedOn: '2027-01-15',
        currency: 'BRL',
        models: { 'sabia-5': { input: 8, output: 32, contextWindow: 262144, maxOutputTokens: 65536 } },
      }),
    );
    connection = await Connection.connect({ address: process.env.TEST_TEMPORAL_ADDRESS! });
    temporal = new Client({ connection });
    builtIn = new MaritacaBatchClient({ client: temporal, taskQueue: TASK_QUEUE, prices: BUILT_IN_PRICES });
    withFile = new MaritacaBatchClient({
      client: temporal,
      taskQueue: TASK_QUEUE,
      prices: loadPriceTable({ file: pricesFile }),
    });
  });
  afterAll(async () => {
    await connection?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const newBatchId = () => `prices-file-${Math.random().toString(36).slice(2)}`;

  async function expectNoWorkflow(batchId: string): Promise<void> {
    await expect(temporal.workflow.getHandle(batchId).describe()).rejects.toBeInstanceOf(
      WorkflowNotFoundError,
    );
  }

  /** The input the workflow was started with, as its history recorded it. */
  async function startedInput(batchId: string): Promise<BatchInput> {
    const { events } = await temporal.workflow.getHandle(batchId).fetchHistory();
    const payload = events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
    return defaultPayloadConverter.fromPayload<BatchInput>(payload);
  }

  test.each<[string, BatchRequest[], { model?: string }, string]>([
    ['the batch model', [question], { model: 'sabia-5' }, 'options.model'],
    ['a request model', [question, { ...question, model: 'sabia-5' }], {}, 'requests[1].model'],
  ])('an unknown model as %s is refused with the known ones', async (_name, requests, options, field) => {
    const batchId = newBatchId();
    const error = await builtIn.start(requests, options, { batchId }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(InvalidBatchInputError);
    expect((error as InvalidBatchInputError).issues).toEqual([{ path: field, message: builtInList }]);
    expect((error as Error).message).toBe(`Invalid batch input: ${field}: ${builtInList}`);
    await expectNoWorkflow(batchId);
  });

  test('an unknown model in a file is refused naming its line and field, before the upload', async () => {
    const file = path.join(dir, 'batch.jsonl');
    writeFileSync(
      file,
      [
        JSON.stringify({ id: 'a', ...question }),
        JSON.stringify({
          custom_id: 'b',
          method: 'POST',
          url: '/v1/chat/completions',
          body: { model: 'sabia-5', messages: question.messages },
        }),
      ].join('\n') + '\n',
    );
    const batchId = newBatchId();
    const error = await builtIn.startFromFile(file, {}, { batchId }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(InvalidBatchFileError);
    expect((error as InvalidBatchFileError).problems).toEqual([
      { line: 2, field: 'body.model', message: builtInList },
    ]);
    expect((error as Error).message).toContain(`line 2: body.model: ${builtInList}`);
    await expectNoWorkflow(batchId);
  });

  test('a model the prices file adds starts a batch, inline and from a file', async () => {
    const inline = newBatchId();
    const handle = await withFile.start(
      [{ ...question, model: 'sabia-5' }],
      { model: 'sabia-5' },
      { batchId: inline },
    );
    try {
      expect((await handle.workflowHandle.describe()).status.name).toBe('RUNNING');
      const input = await startedInput(inline);
      expect(input.options?.model).toBe('sabia-5');
      expect(input.requests?.[0]?.model).toBe('sabia-5');
    } finally {
      await handle.workflowHandle.terminate('test done');
    }

    const file = path.join(dir, 'sabia-5.jsonl');
    writeFileSync(file, JSON.stringify({ id: 'a', model: 'sabia-5', ...question }) + '\n');
    const fromFile = newBatchId();
    const fileHandle = await withFile.startFromFile(file, {}, { batchId: fromFile });
    const input = await startedInput(fromFile);
    try {
      expect(input.source?.count).toBe(1);
    } finally {
      await fileHandle.workflowHandle.terminate('test done');
      await withFile.store.remove([input.source!.url!]);
    }
    // The refusal lists the model the file added.
    const error = await withFile
      .start([question], { model: 'sabia-6' }, { batchId: newBatchId() })
      .catch((err: unknown) => err);
    expect((error as InvalidBatchInputError).issues).toEqual([
      { path: 'options.model', message: withSabia5List },
    ]);
  });

  test('by default the client takes its table from MARITACA_PRICES_FILE', async () => {
    const before = process.env.MARITACA_PRICES_FILE;
    process.env.MARITACA_PRICES_FILE = pricesFile;
    let fromEnv: MaritacaBatchClient;
    try {
      fromEnv = new MaritacaBatchClient({ client: temporal, taskQueue: TASK_QUEUE });
    } finally {
      if (before === undefined) delete process.env.MARITACA_PRICES_FILE;
      else process.env.MARITACA_PRICES_FILE = before;
    }
    expect(fromEnv.prices.checkedOn).toBe('2027-01-15');
    const batchId = newBatchId();
    const handle = await fromEnv.start([question], { model: 'sabia-5' }, { batchId });
    await handle.workflowHandle.terminate('test done');
  });

  test('connect refuses a bad price table before it opens a connection', async () => {
    const error = await MaritacaBatchClient.connect({
      address: process.env.TEST_TEMPORAL_ADDRESS!,
      prices: { ...BUILT_IN_PRICES, currency: 'USD' as 'BRL' },
    }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(InvalidPriceTableError);
    expect((error as Error).message).toBe(
      'prices option: currency: expected "BRL" (every cost in this package is in BRL)',
    );
  });
});

describe('a worker with a prices file estimates and charges at its prices', () => {
  let ctx: TestContext;
  const repriced = parsePriceTable(
    {
      checkedOn: '2027-02-01',
      currency: 'BRL',
      models: { 'sabiazinho-4': { input: 2, output: 8, contextWindow: 131072, maxOutputTokens: 32768 } },
    },
    'test prices',
  );

  beforeAll(async () => {
    ctx = await startTestContext({ latencyMs: 5, replyTokens: 'max' }, { prices: repriced });
  });
  afterAll(async () => {
    await ctx?.close();
  });

  test('the estimate, the reservations and the actual cost use the worker table', async () => {
    const handle = await ctx.batches.start(questions(3), {
      model: 'sabiazinho-4',
      maxOutputTokens: 20,
      autoApproveBelow: 1,
    });
    const result = await handle.result();
    expect(result.status).toBe('completed');
    // Twice the built-in sabiazinho-4 prices, input and output.
    const builtIn = estimateBatchCost(
      estimateInputOf(questions(3), { model: 'sabiazinho-4', maxOutputTokens: 20 }),
    );
    expect(result.estimate!.totalCost).toBeCloseTo(2 * builtIn.totalCost, 9);
    const usage = ctx.fake.stats().billed;
    expect(result.actualCost).toBeCloseTo((usage.promptTokens * 2 + usage.completionTokens * 8) / 1e6, 9);
  });
});
