import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { encryptionKeysFromEnv, type EncryptionKeys } from '../codec/keys';
import { createLineSealer } from '../codec/sealed-lines';
import { createBatchStore, type BatchStore } from './batch-store';
import { MaritacaBatchError } from './errors/maritaca-batch-error';
import { createFileObjectStorage } from './file-objects';
import type { ObjectStorage } from './object-storage';
import { createS3ObjectStorage, type S3ObjectStorageOptions } from './s3-objects';

/** Options of {@link storeFromUrl}. */
export interface StoreFromUrlOptions {
  /** S3 settings (a custom endpoint such as MinIO's implies path-style addressing). */
  s3?: S3ObjectStorageOptions;
  /** Keys that seal every object the store writes; `false` or absent leaves them plain. */
  encryption?: EncryptionKeys | false;
}

/** The store folder used when nothing is configured: `.maritaca-batch/store` under the working directory. */
export function defaultStoreUrl(): string {
  return pathToFileURL(path.resolve('.maritaca-batch', 'store')).href;
}

/**
 * A {@link BatchStore} for a URL: `s3://bucket/prefix` (any S3-compatible service; credentials
 * and region from the AWS SDK's default chain) or `file:///absolute/folder` (one machine, or a
 * volume every host mounts). A plain path is taken as a folder.
 *
 * @example
 * const store = storeFromUrl('s3://my-bucket/maritaca', { s3: { endpoint: 'http://minio:9000' } });
 */
export function storeFromUrl(url: string, options: StoreFromUrlOptions = {}): BatchStore {
  let root = url.trim();
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(root)) root = pathToFileURL(path.resolve(root)).href;
  if (!root.startsWith('s3://') && !root.startsWith('file://')) {
    throw new MaritacaBatchError(
      `MARITACA_STORE_URL must be s3://bucket/prefix or file:///absolute/path (got ${JSON.stringify(url)})`,
    );
  }
  if (root.startsWith('s3://') && !/^s3:\/\/[^/]+/.test(root)) {
    throw new MaritacaBatchError(`MARITACA_STORE_URL names no bucket: ${JSON.stringify(url)}`);
  }
  // Each backend is made on first use, so a file store never loads the AWS SDK's client.
  const backends: Partial<Record<'file' | 's3', ObjectStorage>> = {};
  const objects = (scheme: 'file' | 's3'): ObjectStorage =>
    (backends[scheme] ??= scheme === 's3' ? createS3ObjectStorage(options.s3) : createFileObjectStorage());
  return createBatchStore({
    url: root,
    objects,
    ...(options.encryption ? { sealer: createLineSealer(options.encryption) } : {}),
  });
}

/**
 * The store the environment describes, as the worker, the client and the CLI all read it:
 * `MARITACA_STORE_URL` (default: `MARITACA_RESULTS_DIR` as a folder, then `.maritaca-batch/store`),
 * `MARITACA_S3_ENDPOINT`, and the payload encryption keys (`MARITACA_ENCRYPTION_KEY`, ...) unless
 * `options.encryption` gives the keys (or `false` for none).
 */
export function storeFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  options: { encryption?: EncryptionKeys | false } = {},
): BatchStore {
  const configured = env.MARITACA_STORE_URL?.trim();
  const legacyFolder = env.MARITACA_RESULTS_DIR?.trim();
  const url =
    configured || (legacyFolder ? pathToFileURL(path.resolve(legacyFolder)).href : defaultStoreUrl());
  const endpoint = env.MARITACA_S3_ENDPOINT?.trim();
  const encryption =
    options.encryption === false ? undefined : (options.encryption ?? encryptionKeysFromEnv(env));
  return storeFromUrl(url, {
    ...(endpoint ? { s3: { endpoint } } : {}),
    ...(encryption ? { encryption } : {}),
  });
}
