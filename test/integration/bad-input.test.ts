import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { InvalidBatchInputError, MaritacaBatchClient, type BatchOptions, type BatchRequest } from '../../src';

const ok: BatchRequest[] = [{ messages: [{ role: 'user', content: 'Olá' }] }];

describe('bad input is refused by the client before any workflow starts', () => {
  let connection: Connection;
  let temporal: Client;
  let batches: MaritacaBatchClient;

  beforeAll(async () => {
    connection = await Connection.connect({ address: process.env.TEST_TEMPORAL_ADDRESS! });
    temporal = new Client({ connection });
    batches = new MaritacaBatchClient({ client: temporal, taskQueue: 'bad-input-never-polled' });
  });
  afterAll(async () => {
    await connection?.close();
  });

  const cases: [string, unknown, BatchOptions, string][] = [
    ['empty requests', [], {}, 'requests'],
    [
      'a message with an unknown role',
      [ok[0], ok[0], ok[0], { messages: [{ role: 'robot', content: 'x' }] }],
      {},
      'requests[3].messages[0].role',
    ],
    [
      'duplicate ids',
      [
        { ...ok[0], id: 'a' },
        { ...ok[0], id: 'a' },
      ],
      {},
      'requests[1].id',
    ],
    ['an index id taken by an explicit id', [{ ...ok[0], id: '1' }, ok[0]], {}, 'requests[1].id'],
    ['maxConcurrency 0', ok, { maxConcurrency: 0 }, 'options.maxConcurrency'],
    ['an unknown model', ok, { model: 'gpt-4o' }, 'options.model'],
    ['a message without content', [{ messages: [{ role: 'user' }] }], {}, 'requests[0].messages[0].content'],
    [
      'a non-number autoApproveBelow',
      ok,
      { autoApproveBelow: 'lots' as unknown as number },
      'options.autoApproveBelow',
    ],
    ['a bad approvalTimeout', ok, { approvalTimeout: 'soon' }, 'options.approvalTimeout'],
  ];

  test.each(cases)('%s', async (_name, requests, options, field) => {
    const batchId = `bad-input-${Math.random().toString(36).slice(2)}`;
    const error = await batches.start(requests as BatchRequest[], options, { batchId }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(InvalidBatchInputError);
    const invalid = error as InvalidBatchInputError;
    expect(invalid.issues.map((i) => i.path)).toContain(field);
    expect(invalid.message).toContain(field);
    await expect(temporal.workflow.getHandle(batchId).describe()).rejects.toBeInstanceOf(
      WorkflowNotFoundError,
    );
  });

  test('a non-number budget is refused before the signal is sent', async () => {
    const handle = batches.getHandle('no-such-batch-needed');
    const error = await handle.approve({ budget: 'a lot' as unknown as number }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(InvalidBatchInputError);
    expect((error as InvalidBatchInputError).issues[0]!.path).toBe('budget');
  });
});
