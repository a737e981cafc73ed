/**
 * One contract, two implementations: the batch store on a local folder and on a real S3-protocol
 * server (the suite's S3 test server) must behave alike for paging, outcomes, compaction,
 * encryption and purge.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  StoreAccessError,
  collectOutcomes,
  createFileObjectStorage,
  createS3ObjectStorage,
  storeFromUrl,
  type BatchStore,
  type ObjectStorage,
} from '../../src/store';
import { createTestBucket } from '../../src/testing/s3-server';
import {
  S3_RUN_ANSWERS_PER_OBJECT,
  unwrittenRunAnswersAtMost,
  type RequestOutcome,
  type ResultsRef,
} from '../../src/shared';

process.env.AWS_ACCESS_KEY_ID ??= 'test';
process.env.AWS_SECRET_ACCESS_KEY ??= 'test';

const endpoint = process.env.TEST_S3_ENDPOINT!;
const keys = { keyId: 'k1', key: randomBytes(32) };

interface Backend {
  name: string;
  root(): Promise<string>;
  raw(): ObjectStorage;
}

const backends: Backend[] = [
  {
    name: 'file',
    async root() {
      return pathToFileURL(mkdtempSync(path.join(tmpdir(), 'mb-store-'))).href;
    },
    raw: () => createFileObjectStorage(),
  },
  {
    name: 's3',
    async root() {
      const bucket = `store-${randomUUID().slice(0, 8)}`;
      await createTestBucket(endpoint, bucket);
      return `s3://${bucket}/batches`;
    },
    raw: () => createS3ObjectStorage({ endpoint }),
  },
];

function requestLines(count: number): string {
  return (
    Array.from({ length: count }, (_, i) =>
      JSON.stringify({
        id: `r${i}`,
        messages: [{ role: 'user', content: `Pergunta secreta ${i}: olá, ação!` }],
      }),
    ).join('\n') + '\n'
  );
}

function outcome(index: number, text = `resposta ${index}`): RequestOutcome {
  return {
    id: `r${index}`,
    index,
    ok: true,
    attempts: 1,
    cost: 0.001,
    result: {
      generations: [
        { text, message: { role: 'assistant', content: text }, generationInfo: { finishReason: 'stop' } },
      ],
      llmOutput: { tokenUsage: { promptTokens: 3, completionTokens: 2, totalTokens: 5 }, model: 'sabia-4' },
    },
  };
}

function localFile(text: string): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'mb-file-')), 'batch.jsonl');
  writeFileSync(file, text);
  return file;
}

describe.each(backends)('batch store on $name', (backend) => {
  let store: BatchStore;
  let root: string;

  beforeAll(async () => {
    root = await backend.root();
    store = storeFromUrl(root, { s3: { endpoint } });
  });

  test('uploads a file and pages it back by byte offset, every request once, in order', async () => {
    // Larger than one read chunk, with progress heard: the upload must lose no byte either way.
    const text = requestLines(9000);
    const heard: number[] = [];
    const url = await store.putRequests('paging', localFile(text), (read) => heard.push(read));
    expect(heard.at(-1)).toBe(Buffer.byteLength(text));
    expect(url.startsWith(root)).toBe(true);
    const ids: string[] = [];
    let offset = 0;
    for (;;) {
      const page = await store.readRequestPage({ type: 'jsonl', url, count: 9000 }, offset, 500);
      if (page.requests.length === 0) break;
      ids.push(...page.requests.map((r) => r.id!));
      offset = page.nextByteOffset;
    }
    expect(ids).toEqual(Array.from({ length: 9000 }, (_, i) => `r${i}`));
  });

  test('refuses an object that does not exist, naming it and quoting the store', async () => {
    const missing = `${root}/nowhere/requests.jsonl`;
    const error = await store.checkReadable(missing).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StoreAccessError);
    expect((error as StoreAccessError).permanent).toBe(true);
    expect((error as Error).message).toContain(missing);
    const pageError = await store
      .readRequestPage({ type: 'jsonl', url: missing, count: 1 }, 0, 10)
      .catch((err: unknown) => err);
    expect(pageError).toBeInstanceOf(StoreAccessError);
    expect((pageError as StoreAccessError).permanent).toBe(true);
    expect((pageError as Error).message).toContain(missing);
  });

  test('a rewritten outcome replaces the first; reading streams every request once in input order', async () => {
    const ref = store.resultsRefFor('rewrite', 'run1');
    await store.appendOutcomes(
      ref,
      [5, 3, 9, 0].map((i) => outcome(i)),
    );
    await store.appendOutcomes(ref, [outcome(3, 'second answer')]);
    const read = await collectOutcomes(store.readOutcomes(ref));
    expect(read.map((o) => o.index)).toEqual([0, 3, 5, 9]);
    expect(read[1]!.ok && read[1]!.result.generations[0]!.text).toBe('second answer');
  });

  test('compaction folds a page into one object, is idempotent, and survives a crash half way', async () => {
    const ref = store.resultsRefFor('compact', 'run1') as Extract<ResultsRef, { type: 'objects' }>;
    await store.appendOutcomes(
      ref,
      Array.from({ length: 10 }, (_, i) => outcome(i)),
    );
    await store.appendOutcomes(
      ref,
      Array.from({ length: 4 }, (_, i) => outcome(10 + i)),
    );
    await store.compactOutcomes(ref, 0, 10);
    await store.compactOutcomes(ref, 0, 10);
    let objects = await store.batchObjects('compact');
    expect(objects.filter((u) => u.includes('/page-'))).toHaveLength(1);
    expect(objects.filter((u) => u.includes('/outcome-'))).toHaveLength(4);

    // A crash after writing the page but before deleting the singles leaves both: nothing is read twice.
    await store.appendOutcomes(ref, [outcome(2)]);
    expect((await collectOutcomes(store.readOutcomes(ref))).map((o) => o.index)).toEqual(
      Array.from({ length: 14 }, (_, i) => i),
    );
    await store.compactOutcomes(ref, 0, 10);
    await store.compactOutcomes(ref, 10, 14);
    objects = await store.batchObjects('compact');
    expect(objects).toHaveLength(2);
    expect((await collectOutcomes(store.readOutcomes(ref))).map((o) => o.index)).toEqual(
      Array.from({ length: 14 }, (_, i) => i),
    );
  });

  test("a run's log is read back, found for a lost run, and deleted once pages hold all of it", async () => {
    const ref = store.resultsRefFor('run-log', 'run1') as Extract<ResultsRef, { type: 'objects' }>;
    // One run over requests of two pages ([0, 10) and [10, 20)); request 7 is never answered.
    const log = store.outcomeLog(ref, [3, 4, 7, 12]);
    for (const index of [3, 4, 12]) await log.append(outcome(index));
    await log.close();
    await store.appendOutcomes(ref, [outcome(5)]);
    const logs = (await store.batchObjects('run-log')).filter((u) => u.includes('/log-'));
    expect(logs).toHaveLength(1);

    expect((await store.readSingleOutcomes(ref, [3, 7, 12])).map((o) => o.index)).toEqual([3, 12]);
    expect((await collectOutcomes(store.readOutcomes(ref))).map((o) => o.index)).toEqual([3, 4, 5, 12]);

    await store.compactOutcomes(ref, 0, 10);
    let objects = await store.batchObjects('run-log');
    // Request 12's page is not compacted yet, so its log stays and 12 is read from it once.
    expect(objects.filter((u) => u.includes('/log-'))).toHaveLength(logs.length);
    expect((await collectOutcomes(store.readOutcomes(ref))).map((o) => o.index)).toEqual([3, 4, 5, 12]);

    await store.compactOutcomes(ref, 10, 20);
    objects = await store.batchObjects('run-log');
    expect(objects.map((u) => u.slice(u.lastIndexOf('/') + 1)).sort()).toEqual([
      'page-0000000000-0000000010.jsonl',
      'page-0000000010-0000000020.jsonl',
    ]);
    expect((await collectOutcomes(store.readOutcomes(ref))).map((o) => o.index)).toEqual([3, 4, 5, 12]);
  });

  test('a log holds back at most what workflows allow for: nothing on a folder, under ten answers on S3', async () => {
    const ref = store.resultsRefFor('held-back', 'run1') as Extract<ResultsRef, { type: 'objects' }>;
    const indexes = Array.from({ length: 25 }, (_, i) => i);
    const log = store.outcomeLog(ref, indexes);
    for (const index of indexes) await log.append(outcome(index));
    const written = await store.readSingleOutcomes(ref, indexes);
    expect(written.map((o) => o.index)).toEqual(
      indexes.slice(0, backend.name === 'file' ? 25 : 2 * S3_RUN_ANSWERS_PER_OBJECT),
    );
    expect(indexes.length - written.length).toBeLessThanOrEqual(unwrittenRunAnswersAtMost(ref));
    await log.close();
    expect((await store.readSingleOutcomes(ref, indexes)).map((o) => o.index)).toEqual(indexes);
    const objects = (await store.batchObjects('held-back')).filter((u) => u.includes('/log-'));
    expect(objects).toHaveLength(backend.name === 'file' ? 1 : 3);
  });

  test('on S3 a log also writes what it holds once half a second has passed since its last write', async () => {
    const ref = store.resultsRefFor('slow-log', 'run1') as Extract<ResultsRef, { type: 'objects' }>;
    let now = Date.now();
    const clock = jest.spyOn(Date, 'now').mockImplementation(() => now);
    try {
      const log = store.outcomeLog(ref, [0, 1, 2]);
      await log.append(outcome(0));
      const afterFirst = await store.readSingleOutcomes(ref, [0, 1, 2]);
      expect(afterFirst).toHaveLength(backend.name === 'file' ? 1 : 0);
      // A slow call: its answer is written at once, with the one held before it.
      now += 600;
      await log.append(outcome(1));
      expect((await store.readSingleOutcomes(ref, [0, 1, 2])).map((o) => o.index)).toEqual([0, 1]);
      await log.close();
    } finally {
      clock.mockRestore();
    }
  });

  test('a log a run has only just opened is never deleted by a compaction its range spans', async () => {
    const ref = store.resultsRefFor('fresh-log', 'run1') as Extract<ResultsRef, { type: 'objects' }>;
    const fresh = `${ref.url}log-0000000005-0000000015-def456.jsonl`;
    await backend.raw().write(fresh, '');
    await store.appendOutcomes(ref, [outcome(1)]);
    await store.compactOutcomes(ref, 0, 10);
    expect(await store.batchObjects('fresh-log')).toContain(fresh);
  });

  test("a log's unfinished last line (its process died mid-append) is not an outcome", async () => {
    const ref = store.resultsRefFor('torn-log', 'run1') as Extract<ResultsRef, { type: 'objects' }>;
    const whole = JSON.stringify(outcome(1));
    const torn = JSON.stringify(outcome(2)).slice(0, 40);
    await backend.raw().write(`${ref.url}log-0000000001-0000000002-abc123.jsonl`, `${whole}\n${torn}`);
    expect((await store.readSingleOutcomes(ref, [1, 2])).map((o) => o.index)).toEqual([1]);
    expect((await collectOutcomes(store.readOutcomes(ref))).map((o) => o.index)).toEqual([1]);
    await store.compactOutcomes(ref, 0, 10);
    expect((await collectOutcomes(store.readOutcomes(ref))).map((o) => o.index)).toEqual([1]);
  });

  test('with encryption, nothing it writes is readable without the key', async () => {
    const sealed = storeFromUrl(root, { s3: { endpoint }, encryption: keys });
    const url = await sealed.putRequests('sealed', localFile(requestLines(30)));
    const ref = sealed.resultsRefFor('sealed', 'run1');
    await sealed.appendOutcomes(
      ref,
      Array.from({ length: 30 }, (_, i) => outcome(i, `resposta secreta ${i}`)),
    );
    const log = sealed.outcomeLog(ref, [30, 31]);
    await log.append(outcome(30, 'resposta secreta 30'));
    await log.close();
    await sealed.compactOutcomes(ref, 0, 20);
    const raw = backend.raw();
    const objects = await sealed.batchObjects('sealed');
    // Requests, a page, 10 singles and the log.
    expect(objects.length).toBe(13);
    for (const object of objects) {
      const bytes = (await raw.read(object)).toString('utf8');
      expect(bytes).not.toContain('secreta');
      expect(bytes).not.toContain('resposta');
      expect(bytes).not.toContain('messages');
    }
    // With the key: pages, by offset, and outcomes read back whole.
    const page = await sealed.readRequestPage({ type: 'jsonl', url, count: 30 }, 0, 100);
    expect(page.requests).toHaveLength(30);
    expect(page.requests[7]!.messages[0]!.content).toContain('secreta 7');
    expect((await collectOutcomes(sealed.readOutcomes(ref))).map((o) => o.index)).toEqual(
      Array.from({ length: 31 }, (_, i) => i),
    );
    // Without it: a clear refusal, not garbage.
    await expect(collectOutcomes(store.readOutcomes(ref))).rejects.toThrow(/encrypted/);
    // A rotated key set still opens what the old key sealed.
    const rotated = storeFromUrl(root, {
      s3: { endpoint },
      encryption: { keyId: 'k2', key: randomBytes(32), previousKeys: { k1: keys.key } },
    });
    expect(await collectOutcomes(rotated.readOutcomes(ref))).toHaveLength(31);
  });

  test('purge deletes every object of one batch and nothing of another', async () => {
    await store.putRequests('purge-me', localFile(requestLines(3)));
    await store.appendOutcomes(store.resultsRefFor('purge-me', 'r'), [outcome(0), outcome(1)]);
    await store.appendOutcomes(store.resultsRefFor('keep-me', 'r'), [outcome(0)]);
    expect(await store.purge('purge-me')).toBe(3);
    expect(await store.batchObjects('purge-me')).toEqual([]);
    expect(await store.batchObjects('keep-me')).toHaveLength(1);
  });
});

test('a store URL that is neither s3:// nor file:// is refused with the accepted forms', () => {
  expect(() => storeFromUrl('gs://bucket/x')).toThrow(/s3:\/\/bucket\/prefix or file:\/\/\/absolute\/path/);
  expect(() => storeFromUrl('s3://')).toThrow(/names no bucket|s3:\/\//);
});
