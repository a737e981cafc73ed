/**
 * The S3 test server speaks the parts of the S3 protocol the batch store relies on: ranged reads,
 * multipart uploads, conditional writes, prefix listing with pagination and batch deletes. Runs
 * against the server the global setup started (TEST_S3_ENDPOINT), with the AWS SDK the store uses.
 */
import { randomBytes } from 'node:crypto';
import {
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createTestBucket, createTestS3Client, findMotoServer, startS3Server } from '../../src/testing';

const MiB = 1024 * 1024;

/** The HTTP status and error name of a rejected S3 call (for `expect(...).toEqual`). */
async function failureOf(call: Promise<unknown>): Promise<{ status?: number; name: string } | 'succeeded'> {
  try {
    await call;
    return 'succeeded';
  } catch (err) {
    const e = err as { name: string; $metadata?: { httpStatusCode?: number } };
    return { status: e.$metadata?.httpStatusCode, name: e.name };
  }
}

describe('S3 test server (moto)', () => {
  const endpoint = process.env.TEST_S3_ENDPOINT!;
  const bucket = `s3-server-test-${randomBytes(4).toString('hex')}`;
  let s3: S3Client;

  async function text(key: string, range?: string): Promise<string> {
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: range }));
    return got.Body!.transformToString();
  }

  async function keysUnder(prefix: string): Promise<string[]> {
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    return (listed.Contents ?? []).map((object) => object.Key!);
  }

  beforeAll(async () => {
    expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await createTestBucket(endpoint, bucket);
    s3 = createTestS3Client(endpoint);
  });

  afterAll(async () => {
    if (!s3) return;
    const left = await keysUnder('');
    if (left.length > 0) {
      await s3.send(
        new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: left.map((Key) => ({ Key })) } }),
      );
    }
    await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
    s3.destroy();
  });

  test('creating the same bucket again is allowed', async () => {
    await expect(createTestBucket(endpoint, bucket)).resolves.toBeUndefined();
  });

  test('puts an object and reads bytes 2-5 of it with a ranged GET', async () => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'ranged/digits.txt', Body: '0123456789' }));
    expect(await text('ranged/digits.txt')).toBe('0123456789');

    const got = await s3.send(
      new GetObjectCommand({ Bucket: bucket, Key: 'ranged/digits.txt', Range: 'bytes=2-5' }),
    );
    expect(got.$metadata.httpStatusCode).toBe(206);
    expect(got.ContentRange).toBe('bytes 2-5/10');
    expect(got.ContentLength).toBe(4);
    expect(await got.Body!.transformToString()).toBe('2345');
    // An open-ended range reads to the end: how a reader resumes from an offset.
    expect(await text('ranged/digits.txt', 'bytes=7-')).toBe('789');
  });

  test('uploads 12 MiB in three 5 MiB-sized parts with lib-storage Upload', async () => {
    const body = randomBytes(12 * MiB);
    const upload = new Upload({
      client: s3,
      params: { Bucket: bucket, Key: 'multipart/big.bin', Body: body },
      partSize: 5 * MiB,
      queueSize: 2,
    });
    const parts: number[] = [];
    upload.on('httpUploadProgress', (progress) => {
      if (progress.part !== undefined) parts.push(progress.part);
    });
    const done = await upload.done();
    // A multipart ETag is "<md5 of part md5s>-<part count>"; a single PUT would have no suffix.
    expect(done.ETag).toMatch(/-3"$/);
    expect(new Set(parts)).toEqual(new Set([1, 2, 3]));

    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'multipart/big.bin' }));
    expect(head.ContentLength).toBe(12 * MiB);
    // A range across the first part boundary comes back byte for byte.
    const from = 5 * MiB - 8;
    const got = await s3.send(
      new GetObjectCommand({ Bucket: bucket, Key: 'multipart/big.bin', Range: `bytes=${from}-${from + 15}` }),
    );
    expect(Buffer.from(await got.Body!.transformToByteArray())).toEqual(body.subarray(from, from + 16));
  });

  test('If-None-Match: * creates a key once and refuses to overwrite it with 412', async () => {
    const key = 'conditional/once.json';
    const first = await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: '{"v":1}', IfNoneMatch: '*' }),
    );
    expect(first.ETag).toBeDefined();

    expect(
      await failureOf(
        s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: '{"v":2}', IfNoneMatch: '*' })),
      ),
    ).toEqual({ status: 412, name: 'PreconditionFailed' });
    expect(await text(key)).toBe('{"v":1}');
  });

  test('If-Match replaces an object only while its ETag is the one read', async () => {
    const key = 'conditional/swap.json';
    const first = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: '{"v":1}' }));
    const second = await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: '{"v":2}', IfMatch: first.ETag }),
    );
    expect(second.ETag).not.toBe(first.ETag);

    // A writer still holding the first ETag lost the race and must be told so.
    expect(
      await failureOf(
        s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: '{"v":3}', IfMatch: first.ETag })),
      ),
    ).toEqual({ status: 412, name: 'PreconditionFailed' });
    expect(await text(key)).toBe('{"v":2}');
  });

  test('lists by prefix, with delimiter and page by page', async () => {
    for (const key of ['list/a/1', 'list/a/2', 'list/a/3', 'list/b/1', 'listing-not-under-prefix']) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: key }));
    }
    expect(await keysUnder('list/a/')).toEqual(['list/a/1', 'list/a/2', 'list/a/3']);

    const folders = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: 'list/', Delimiter: '/' }),
    );
    expect((folders.CommonPrefixes ?? []).map((p) => p.Prefix)).toEqual(['list/a/', 'list/b/']);
    expect(folders.Contents ?? []).toEqual([]);

    const paged: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: 'list/', MaxKeys: 2, ContinuationToken: token }),
      );
      paged.push(...(page.Contents ?? []).map((object) => object.Key!));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
      pages += 1;
    } while (token);
    expect(paged).toEqual(['list/a/1', 'list/a/2', 'list/a/3', 'list/b/1']);
    expect(pages).toBe(2);
  });

  test('deletes many keys in one DeleteObjects call', async () => {
    const keys = ['delete/1', 'delete/2', 'delete/3'];
    for (const key of keys) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: key }));
    const deleted = await s3.send(
      new DeleteObjectsCommand({
        Bucket: bucket,
        Delete: { Objects: [...keys, 'delete/never-existed'].map((Key) => ({ Key })) },
      }),
    );
    // S3 reports a missing key as deleted too, so deleting is safe to repeat.
    expect((deleted.Deleted ?? []).map((d) => d.Key).sort()).toEqual(
      [...keys, 'delete/never-existed'].sort(),
    );
    expect(deleted.Errors ?? []).toEqual([]);
    expect(await keysUnder('delete/')).toEqual([]);
  });
});

describe('startS3Server', () => {
  test('serves on its own port and stops on close', async () => {
    const server = await startS3Server({ executable: await findMotoServer() });
    expect(server.endpoint).toBe(`http://127.0.0.1:${server.port}`);
    expect(server.endpoint).not.toBe(process.env.TEST_S3_ENDPOINT);
    await createTestBucket(server.endpoint, 'own-server');
    await server.close();
    expect(await failureOf(createTestBucket(server.endpoint, 'after-close'))).toEqual({
      status: undefined,
      name: expect.stringMatching(/Error/),
    });
  });

  test('findMotoServer rejects a MOTO_SERVER_PATH that is not an executable', async () => {
    await expect(findMotoServer({ MOTO_SERVER_PATH: '/nonexistent/moto_server' })).rejects.toThrow(
      /MOTO_SERVER_PATH/,
    );
  });
});
