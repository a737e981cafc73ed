/**
 * Large batches through the S3 store, end to end: a real worker and client on the suite's S3 test
 * server, requests uploaded and paged by ranged reads, outcomes compacted per page, payload
 * encryption extending to every stored object, and refusals that name what cannot be read.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from '@temporalio/client';
import {
  AesGcmPayloadCodec,
  BatchFailedError,
  FailureTypes,
  MaritacaBatchClient,
  StoreAccessError,
  WORKFLOW_TYPE,
  createS3ObjectStorage,
  storeFromUrl,
  toJsonlInputLines,
  type BatchStore,
} from '../../src';
import { createTestBucket } from '../../src/testing/s3-server';
import { startTestContext, type TestContext } from '../helpers/context';

process.env.AWS_ACCESS_KEY_ID ??= 'test';
process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
const endpoint = process.env.TEST_S3_ENDPOINT!;

function batchFile(count: number, prefix: string): { file: string; ids: string[] } {
  const requests = Array.from({ length: count }, (_, i) => ({
    id: `${prefix}-${i}`,
    messages: [{ role: 'user' as const, content: `Pergunta confidencial ${i} sobre o contrato` }],
    maxTokens: 20,
  }));
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'mb-s3-')), 'batch.jsonl');
  writeFileSync(file, toJsonlInputLines(requests, 'openai'));
  return { file, ids: requests.map((r) => r.id) };
}

describe('batches on the S3 store', () => {
  const keys = { keyId: 's3-test', key: randomBytes(32) };
  let bucket: string;
  let store: BatchStore;
  let ctx: TestContext;
  let batches: MaritacaBatchClient;

  beforeAll(async () => {
    bucket = `batches-${randomUUID().slice(0, 8)}`;
    await createTestBucket(endpoint, bucket);
    store = storeFromUrl(`s3://${bucket}/maritaca`, { s3: { endpoint }, encryption: keys });
    ctx = await startTestContext({ latencyMs: 0 }, { store, encryption: keys });
    const temporal = new Client({
      connection: ctx.temporal.connection,
      dataConverter: { payloadCodecs: [new AesGcmPayloadCodec(keys)] },
    });
    batches = new MaritacaBatchClient({ client: temporal, taskQueue: ctx.taskQueue, store });
  });
  afterAll(async () => {
    await ctx?.close();
  });

  test('1,300 requests uploaded, paged across runs and read back in order; a few sealed objects remain', async () => {
    const { file, ids } = batchFile(1300, 'big');
    const uploads: number[] = [];
    const handle = await batches.startFromFile(
      file,
      { maxConcurrency: 40, autoApproveBelow: 1000, historyEventLimit: 2000 },
      { onUploadProgress: (sent) => uploads.push(sent) },
    );
    expect(uploads.length).toBeGreaterThan(0);
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(result.runs).toBeGreaterThan(1);
    expect(result.results.map((r) => r.id)).toEqual(ids);
    expect(result.results.every((r) => r.ok)).toBe(true);
    const stats = ctx.fake.stats();
    for (const id of ids) expect(stats.byRequestId[`${handle.batchId}/${id}`]).toBe(1);

    const streamed: string[] = [];
    for await (const outcome of handle.outcomes()) streamed.push(outcome.id);
    expect(streamed).toEqual(ids);

    // The uploaded requests plus one object per page of 500: 1 + 3.
    const objects = await store.batchObjects(handle.batchId);
    expect(objects.filter((u) => u.includes('/requests-'))).toHaveLength(1);
    expect(objects.filter((u) => u.includes('/page-'))).toHaveLength(3);
    expect(objects).toHaveLength(4);
    const raw = createS3ObjectStorage({ endpoint });
    for (const object of objects) {
      const text = (await raw.read(object)).toString('utf8');
      expect(text).not.toMatch(/confidencial|contrato|big-1|messages|generations/);
    }

    expect(await batches.purge(handle.batchId)).toBe(4);
    expect(await store.batchObjects(handle.batchId)).toEqual([]);
  }, 300_000);

  test('startFromObject runs a file already in the bucket without copying it; purge keeps that file', async () => {
    const { file, ids } = batchFile(40, 'obj');
    const plain = storeFromUrl(`s3://${bucket}/inbox`, { s3: { endpoint } });
    const objectUrl = await plain.putRequests('from-user', file);
    const handle = await batches.startFromObject(objectUrl, { maxConcurrency: 8, autoApproveBelow: 1000 });
    const result = await handle.result();
    expect(result.results.map((r) => r.id)).toEqual(ids);
    // Purge deletes the batch's own objects (its answers, kept as receipts of its runs of calls:
    // one object per single call, one per ten answers of a run), never the file it was given.
    const receipts = await store.batchObjects(handle.batchId);
    expect(receipts.length).toBeGreaterThan(0);
    expect(receipts.length).toBeLessThanOrEqual(40);
    expect(await batches.purge(handle.batchId)).toBe(receipts.length);
    expect(await store.batchObjects(handle.batchId)).toEqual([]);
    expect(await createS3ObjectStorage({ endpoint }).size(objectUrl)).toBeGreaterThan(0);
  });

  test('a missing object is refused before anything starts, naming it and quoting the store', async () => {
    const missing = `s3://${bucket}/inbox/none.jsonl`;
    const batchId = `missing-${randomUUID()}`;
    const error = await batches.startFromObject(missing, {}, { batchId }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StoreAccessError);
    expect((error as Error).message).toContain(missing);
    await expect(batches.client.workflow.getHandle(batchId).describe()).rejects.toThrow(/not found/i);
  });

  test('a source the workers cannot read fails the batch at once with the reference; no client waits', async () => {
    const missing = `s3://${bucket}/gone/requests.jsonl`;
    const raw = await batches.client.workflow.start(WORKFLOW_TYPE, {
      taskQueue: ctx.taskQueue,
      workflowId: `unreadable-${randomUUID()}`,
      args: [{ source: { type: 'jsonl', url: missing, count: 10 }, options: { autoApproveBelow: 100 } }],
    });
    const handle = batches.getHandle(raw.workflowId);
    const error = await handle.result().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(BatchFailedError);
    expect((error as Error).message).toContain(missing);
    const progress = await handle.progress();
    expect(progress.status).toBe('failed');
    expect(progress.failure).toContain(missing);
    // Refused, not retried: one attempt of the estimate.
    const history = await raw.fetchHistory();
    const failed = history.events!.find((e) => e.activityTaskFailedEventAttributes);
    expect(failed?.activityTaskFailedEventAttributes?.failure?.applicationFailureInfo?.type).toBe(
      FailureTypes.StoreUnreadable,
    );
    const started = history.events!.filter((e) => e.activityTaskStartedEventAttributes);
    expect(started.map((e) => e.activityTaskStartedEventAttributes!.attempt)).toEqual([1]);
  });
});
