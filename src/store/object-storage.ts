import type { Readable } from 'node:stream';
import { MaritacaBatchError } from './errors/maritaca-batch-error';

/**
 * The few object operations a batch store needs, addressed by full URL (`s3://bucket/key` or
 * `file:///path`) so a reference written by one host is readable as it is on any other.
 */
export interface ObjectStorage {
  /** Bytes `[start, end)` of an object (fewer at its end, none past it); the whole object without a range. */
  read(url: string, range?: { start: number; end: number }): Promise<Buffer>;
  /** Writes an object whole, replacing any earlier version at once (readers see the old or the new one). */
  write(url: string, body: Buffer | string): Promise<void>;
  /** Streams `body` into an object (multipart where the backend has it). */
  upload(url: string, body: Readable): Promise<void>;
  /** Size in bytes, or `undefined` when there is no such object. */
  size(url: string): Promise<number | undefined>;
  /** URLs of every object under a prefix (a URL ending in `/`), in lexicographic order. */
  list(prefix: string): Promise<string[]>;
  /** Deletes objects; missing ones are not an error. */
  remove(urls: readonly string[]): Promise<void>;
  /**
   * An object that grows by appends, for backends that append cheaply (a local folder; S3 has no
   * append). Nothing is created before the first append.
   */
  openAppend?(url: string): ObjectAppender;
}

/** Appends to one object; a reader may see an unfinished last line while an append is under way. */
export interface ObjectAppender {
  /** Adds `text` at the end of the object, creating it (and its folder) on the first append. */
  append(text: string): Promise<void>;
  /** Releases the object; appends already awaited stay written. */
  close(): Promise<void>;
}

/**
 * An object store refused or failed an operation. `message` names the URL and carries the
 * store's own words; `permanent` is true when trying again cannot help (no such object or
 * bucket, access denied), so callers can stop at once instead of retrying.
 */
export class StoreAccessError extends MaritacaBatchError {
  /** The object or prefix the operation was about. */
  readonly url: string;
  /** Trying again cannot help (missing, or access denied). */
  readonly permanent: boolean;

  constructor(operation: string, url: string, cause: unknown, permanent: boolean) {
    const reason = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
    super(`cannot ${operation} ${url}: ${reason}`, { cause });
    this.url = url;
    this.permanent = permanent;
  }
}

/** Joins a root URL and a relative key with exactly one `/` between them. */
export function joinUrl(root: string, key: string): string {
  return `${root.replace(/\/+$/, '')}/${key.replace(/^\/+/, '')}`;
}
