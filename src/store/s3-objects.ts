import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { StoreAccessError, type ObjectStorage } from './object-storage';

/** How to reach an S3-compatible service; credentials come from the AWS SDK's default chain. */
export interface S3ObjectStorageOptions {
  /** A custom endpoint (MinIO, R2, Ceph, GCS interop); implies path-style addressing. */
  endpoint?: string;
  /** Region (default `AWS_REGION`, then `AWS_DEFAULT_REGION`, then `us-east-1`, which MinIO accepts). */
  region?: string;
  /** A ready client instead (its configuration wins over the options above). */
  client?: S3Client;
}

/** Multipart part size: S3's minimum is 5 MiB; 8 MiB keeps a 1 GB file under 130 parts. */
const PART_BYTES = 8 * 1024 * 1024;
/** DeleteObjects takes at most this many keys per call. */
const DELETE_BATCH = 1000;
const PERMANENT_ERRORS = new Set(['NoSuchKey', 'NotFound', 'NoSuchBucket', 'AccessDenied', 'Forbidden']);

/** Splits `s3://bucket/key` into its parts. */
export function parseS3Url(url: string): { bucket: string; key: string } {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
  if (!match) throw new Error(`not an s3:// URL: ${url}`);
  return { bucket: match[1]!, key: match[2]! };
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

function fail(operation: string, url: string, err: unknown): StoreAccessError {
  const status = statusOf(err);
  const permanent =
    PERMANENT_ERRORS.has((err as Error).name) || status === 403 || status === 404 || status === 400;
  return new StoreAccessError(operation, url, err, permanent);
}

/** The S3 client the default chain configures, with path-style addressing for custom endpoints. */
export function createS3Client(options: S3ObjectStorageOptions = {}): S3Client {
  const config: S3ClientConfig = {
    region: options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    // Ask for checksums only where the operation requires them: MinIO, R2 and Ceph predate the
    // SDK's newer default of sending them on every upload.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
  if (options.endpoint) {
    config.endpoint = options.endpoint;
    config.forcePathStyle = true;
  }
  return new S3Client(config);
}

/** {@link ObjectStorage} on an S3-compatible service: `s3://bucket/key` URLs. */
export function createS3ObjectStorage(options: S3ObjectStorageOptions = {}): ObjectStorage {
  const client = options.client ?? createS3Client(options);
  return {
    async read(url, range) {
      const { bucket, key } = parseS3Url(url);
      if (range && range.end <= range.start) return Buffer.alloc(0);
      try {
        const response = await client.send(
          new GetObjectCommand({
            Bucket: bucket,
            Key: key,
            ...(range ? { Range: `bytes=${range.start}-${range.end - 1}` } : {}),
          }),
        );
        return Buffer.from((await response.Body?.transformToByteArray()) ?? new Uint8Array());
      } catch (err) {
        // A range that starts past the end reads nothing, as a file read there would.
        if (range && statusOf(err) === 416) return Buffer.alloc(0);
        throw fail('read', url, err);
      }
    },

    async write(url, body) {
      const { bucket, key } = parseS3Url(url);
      try {
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
      } catch (err) {
        throw fail('write', url, err);
      }
    },

    async upload(url, body) {
      const { bucket, key } = parseS3Url(url);
      const upload = new Upload({
        client,
        params: { Bucket: bucket, Key: key, Body: body },
        partSize: PART_BYTES,
        queueSize: 2,
      });
      try {
        await upload.done();
      } catch (err) {
        throw fail('write', url, err);
      }
    },

    async size(url) {
      const { bucket, key } = parseS3Url(url);
      try {
        const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return head.ContentLength ?? 0;
      } catch (err) {
        if (statusOf(err) === 404 && (err as Error).name !== 'NoSuchBucket') return undefined;
        throw fail('read', url, err);
      }
    },

    async list(prefix) {
      const { bucket, key } = parseS3Url(prefix);
      const urls: string[] = [];
      let token: string | undefined;
      try {
        do {
          const page = await client.send(
            new ListObjectsV2Command({ Bucket: bucket, Prefix: key, ContinuationToken: token }),
          );
          for (const object of page.Contents ?? []) if (object.Key) urls.push(`s3://${bucket}/${object.Key}`);
          token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token);
      } catch (err) {
        throw fail('list', prefix, err);
      }
      return urls.sort();
    },

    async remove(urls) {
      const byBucket = new Map<string, string[]>();
      for (const url of urls) {
        const { bucket, key } = parseS3Url(url);
        const keys = byBucket.get(bucket);
        if (keys) keys.push(key);
        else byBucket.set(bucket, [key]);
      }
      for (const [bucket, keys] of byBucket) {
        for (let i = 0; i < keys.length; i += DELETE_BATCH) {
          const chunk = keys.slice(i, i + DELETE_BATCH);
          try {
            const result = await client.send(
              new DeleteObjectsCommand({
                Bucket: bucket,
                Delete: { Objects: chunk.map((Key) => ({ Key })), Quiet: true },
              }),
            );
            const refused = result.Errors?.[0];
            if (refused) throw Object.assign(new Error(refused.Message ?? 'refused'), { name: refused.Code });
          } catch (err) {
            throw fail('delete', `s3://${bucket}/${chunk[0]}`, err);
          }
        }
      }
    },
  };
}
