import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { Transform, type Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { isSealedLine, type LineSealer } from '../codec/sealed-lines';
import {
  unwrittenRunAnswersAtMost,
  type BatchRequest,
  type RequestOutcome,
  type RequestSource,
  type ResultsRef,
} from '../shared';
import { MaritacaBatchError } from './errors/maritaca-batch-error';
import { parseBatchJsonl } from './jsonl';
import { StoreAccessError, joinUrl, type ObjectStorage } from './object-storage';

/**
 * Where batches keep what does not belong in a workflow history: requests uploaded by clients,
 * read page by page with ranged reads, and one outcome per request, compacted per page once the
 * page is done. Every host that shares the store's URL (an S3 bucket, or a folder on one machine
 * or a shared volume) reads what any other host wrote.
 */
export interface BatchStore {
  /** Root URL of this store's objects, e.g. `s3://bucket/prefix` or `file:///var/lib/maritaca`. */
  readonly url: string;
  /**
   * Uploads a local JSONL file as the requests of `batchId` (sealed line by line when encryption
   * is on; multipart on S3) and returns its URL. `onBytes` hears the bytes of the file read so far.
   */
  putRequests(batchId: string, localFile: string, onBytes?: (read: number) => void): Promise<string>;
  /** The size of a requests object, or a permanent {@link StoreAccessError} naming it when it cannot be read. */
  checkReadable(url: string): Promise<number>;
  /** The whole requests object as plain JSONL text (opened when sealed). */
  readRequestsText(url: string): Promise<string>;
  /** Up to `limit` requests of `source` from `byteOffset` on, and where the next page starts. */
  readRequestPage(
    source: RequestSource,
    byteOffset: number,
    limit: number,
  ): Promise<{ requests: BatchRequest[]; nextByteOffset: number }>;
  /** Where the outcomes of one batch go; `runId` keeps a re-used batch id from overwriting older outcomes. */
  resultsRefFor(batchId: string, runId?: string): ResultsRef;
  /** Writes outcomes, one object each; writing one again (a retried activity) replaces it, never duplicates. */
  appendOutcomes(ref: ResultsRef, outcomes: readonly RequestOutcome[]): Promise<void>;
  /**
   * Where a run of calls for the requests at `indexes` records its outcomes: one object the run
   * appends to where the backend appends (a folder), each outcome written when its append
   * resolves; on S3, one object per `S3_RUN_ANSWERS_PER_OBJECT` outcomes or half a second,
   * the rest written by `close`. Logs are read back, compacted and purged like single outcomes.
   */
  outcomeLog(ref: ResultsRef, indexes: readonly number[]): OutcomeLog;
  /**
   * Folds the single outcomes of requests `[startIndex, endIndex)` into one page object and deletes
   * the singles. Idempotent: running it again after a crash at any point leaves the same page.
   */
  compactOutcomes(ref: ResultsRef, startIndex: number, endIndex: number): Promise<void>;
  /** Every outcome, one per request, in input order, streamed (memory stays flat for any size). */
  readOutcomes(ref: ResultsRef): AsyncIterable<RequestOutcome>;
  /**
   * The outcomes already written one by one or in run logs for these requests (not yet folded
   * into a page), in index order; requests without one are left out.
   */
  readSingleOutcomes(ref: ResultsRef, indexes: readonly number[]): Promise<RequestOutcome[]>;
  /** Deletes the objects at these URLs (missing ones are not an error). */
  remove(urls: readonly string[]): Promise<void>;
  /** URLs of every object this store wrote for `batchId` (requests it uploaded and outcomes). */
  batchObjects(batchId: string): Promise<string[]>;
  /** Deletes every object of `batchId`; returns how many there were. Objects the store did not write are kept. */
  purge(batchId: string): Promise<number>;
}

/** Outcomes of one run of calls, recorded as they come (see {@link BatchStore.outcomeLog}). */
export interface OutcomeLog {
  /** Records one outcome; it is in the store when this resolves. */
  append(outcome: RequestOutcome): Promise<void>;
  /** Ends the log; outcomes already appended stay. */
  close(): Promise<void>;
}

/** Options of {@link createBatchStore}. */
export interface BatchStoreOptions {
  /** Root URL for new objects: `s3://bucket/prefix` or `file:///absolute/folder`. */
  url: string;
  /** Object access for each URL scheme the store reads or writes (`file:` and `s3:`). */
  objects: (scheme: 'file' | 's3') => ObjectStorage;
  /** Seals every line the store writes and opens sealed lines it reads (payload encryption's keys). */
  sealer?: LineSealer;
}

const READ_CHUNK_BYTES = 512 * 1024;
const NEWLINE = 0x0a;
/** Reads of single outcomes in flight at once while compacting or reading back. */
const READ_PARALLELISM = 16;
const OUTCOME_PATTERN = /\/outcome-(\d+)\.jsonl$/;
const PAGE_PATTERN = /\/page-(\d+)-(\d+)\.jsonl$/;
/** A run's log: the lowest and highest index it may hold, and a suffix unique to the run. */
const LOG_PATTERN = /\/log-(\d+)-(\d+)-[0-9a-f]+(?:-\d+)?\.jsonl$/;
/** An S3 log writes what it holds once this long has passed since its last write. */
const RUN_LOG_WRITE_AFTER_MS = 500;

/** An object holding the outcomes of requests `[start, end)`. */
interface PageObject {
  start: number;
  end: number;
  url: string;
}

/** An object holding the outcome of one request. */
interface SingleObject {
  index: number;
  url: string;
}

/** A run's log, holding outcomes of requests between `lowest` and `highest` (not every one). */
interface RunLog {
  lowest: number;
  highest: number;
  url: string;
}

/** An outcome not in a page yet: in its own object, or already read from a run's log. */
type LooseOutcome = SingleObject | { index: number; outcome: RequestOutcome };

function pad(index: number): string {
  return String(index).padStart(10, '0');
}

/** Runs `work` over `items` with at most `parallelism` at once, results in item order. */
async function mapLimited<T, R>(
  items: readonly T[],
  parallelism: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(parallelism, items.length) }, async () => {
    while (next < items.length) {
      const at = next++;
      results[at] = await work(items[at]!);
    }
  });
  await Promise.all(lanes);
  return results;
}

/** The URL of a request source: new sources carry one; sources of older versions carry a path. */
export function sourceUrl(source: RequestSource): string {
  return source.url ?? pathToFileURL(source.path ?? '').href;
}

/** A {@link BatchStore} over object storage, for either backend (see `storeFromUrl` for the usual way to get one). */
export function createBatchStore(options: BatchStoreOptions): BatchStore {
  const root = options.url.replace(/\/+$/, '');
  const sealer = options.sealer;
  const objectsFor = (url: string): ObjectStorage => {
    if (url.startsWith('s3://')) return options.objects('s3');
    if (url.startsWith('file://')) return options.objects('file');
    throw new MaritacaBatchError(
      `unsupported store URL ${JSON.stringify(url)}: use s3://bucket/key or file:///path`,
    );
  };
  const batchPrefix = (batchId: string): string => joinUrl(root, `${encodeURIComponent(batchId)}/`);
  // Appends to one legacy results file are chained so concurrent calls never interleave lines.
  const appendQueues = new Map<string, Promise<void>>();

  const sealLine = (line: string): string => (sealer ? sealer.seal(line) : line);
  const openLine = (line: string, url: string): string => {
    if (sealer) return sealer.open(line);
    if (isSealedLine(line)) {
      throw new MaritacaBatchError(
        `${url} is encrypted: set MARITACA_ENCRYPTION_KEY (and the key id it was written with) to read it`,
      );
    }
    return line;
  };
  const openText = (bytes: Buffer, url: string): string[] =>
    bytes
      .toString('utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => openLine(line, url));
  const readLines = async (url: string): Promise<RequestOutcome[]> =>
    openText(await objectsFor(url).read(url), url).map((line) => JSON.parse(line) as RequestOutcome);
  /** A log's outcomes; an unfinished last line (its run's process died mid-append) is not one. */
  const readLog = async (url: string): Promise<RequestOutcome[]> => {
    const bytes = await objectsFor(url).read(url);
    return openText(bytes.subarray(0, bytes.lastIndexOf(NEWLINE) + 1), url).map(
      (line) => JSON.parse(line) as RequestOutcome,
    );
  };
  /** Outcomes of several logs by index; `keep` picks the indexes wanted. */
  const readLogs = async (
    logs: readonly RunLog[],
    keep: (index: number) => boolean,
  ): Promise<Map<number, RequestOutcome>> => {
    const byIndex = new Map<number, RequestOutcome>();
    for (const outcomes of await mapLimited(logs, READ_PARALLELISM, (log) => readLog(log.url))) {
      for (const outcome of outcomes) if (keep(outcome.index)) byIndex.set(outcome.index, outcome);
    }
    return byIndex;
  };

  /** Lists a results prefix as pages (by first index), single outcomes (by index) and run logs. */
  const listResults = async (
    prefix: string,
  ): Promise<{ pages: PageObject[]; singles: SingleObject[]; logs: RunLog[] }> => {
    const pages: PageObject[] = [];
    const singles: SingleObject[] = [];
    const logs: RunLog[] = [];
    for (const url of await objectsFor(prefix).list(prefix)) {
      const page = PAGE_PATTERN.exec(url);
      if (page) pages.push({ start: Number(page[1]), end: Number(page[2]), url });
      const single = OUTCOME_PATTERN.exec(url);
      if (single) singles.push({ index: Number(single[1]), url });
      const log = LOG_PATTERN.exec(url);
      if (log) logs.push({ lowest: Number(log[1]), highest: Number(log[2]), url });
    }
    pages.sort((a, b) => a.start - b.start);
    singles.sort((a, b) => a.index - b.index);
    return { pages, singles, logs };
  };

  const appendOutcomes = async (ref: ResultsRef, outcomes: readonly RequestOutcome[]): Promise<void> => {
    if (outcomes.length === 0) return;
    if (ref.type === 'jsonl') {
      // Results files of batches started by earlier versions: appended, the latest line wins.
      const text = outcomes.map((o) => sealLine(JSON.stringify(o))).join('\n') + '\n';
      const previous = appendQueues.get(ref.path) ?? Promise.resolve();
      const next = previous.then(async () => {
        await mkdir(path.dirname(ref.path), { recursive: true });
        await appendFile(ref.path, text);
      });
      appendQueues.set(
        ref.path,
        next.catch(() => undefined),
      );
      return next;
    }
    await mapLimited(outcomes, READ_PARALLELISM, async (outcome) => {
      const url = joinUrl(ref.url, `outcome-${pad(outcome.index)}.jsonl`);
      await objectsFor(url).write(url, sealLine(JSON.stringify(outcome)) + '\n');
    });
  };

  return {
    url: root,

    async putRequests(batchId, localFile, onBytes) {
      const url = joinUrl(batchPrefix(batchId), `requests-${Date.now().toString(36)}.jsonl`);
      const file = createReadStream(localFile);
      let read = 0;
      // Counted in the pipe itself: a 'data' listener would start the flow before the upload reads it.
      const counted = file.pipe(
        new Transform({
          transform(chunk: Buffer, _encoding, done) {
            read += chunk.length;
            onBytes?.(read);
            done(null, chunk);
          },
        }),
      );
      const body: Readable = sealer ? counted.pipe(sealLines(sealer)) : counted;
      file.on('error', (err) => body.destroy(err));
      await objectsFor(url).upload(url, body);
      return url;
    },

    async checkReadable(url) {
      const size = await objectsFor(url).size(url);
      if (size === undefined) throw new StoreAccessError('read', url, new Error('no such object'), true);
      return size;
    },

    async readRequestsText(url) {
      return openText(await objectsFor(url).read(url), url).join('\n') + '\n';
    },

    async readRequestPage(source, byteOffset, limit) {
      const url = sourceUrl(source);
      const objects = objectsFor(url);
      const lines: string[] = [];
      let pending = Buffer.alloc(0);
      let position = byteOffset;
      let consumed = byteOffset;
      let found = 0;
      while (found < limit) {
        const chunk = await objects.read(url, { start: position, end: position + READ_CHUNK_BYTES });
        if (chunk.length === 0) {
          if (pending.toString('utf8').trim() !== '') {
            lines.push(pending.toString('utf8'));
            found++;
          }
          consumed += pending.length;
          break;
        }
        position += chunk.length;
        let rest = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
        let newline = rest.indexOf(NEWLINE);
        while (newline !== -1 && found < limit) {
          const line = rest.subarray(0, newline).toString('utf8');
          consumed += newline + 1;
          if (line.trim() !== '') {
            lines.push(line);
            found++;
          }
          rest = rest.subarray(newline + 1);
          newline = rest.indexOf(NEWLINE);
        }
        pending = Buffer.from(rest);
      }
      const text = lines.map((line) => openLine(line, url)).join('\n');
      const requests = text.trim() === '' ? [] : parseBatchJsonl(text).requests;
      return { requests, nextByteOffset: consumed };
    },

    resultsRefFor(batchId, runId) {
      return { type: 'objects', url: joinUrl(batchPrefix(batchId), `results${runId ? `-${runId}` : ''}/`) };
    },

    appendOutcomes,

    outcomeLog(ref, indexes) {
      const appendOne = (outcome: RequestOutcome): Promise<void> => appendOutcomes(ref, [outcome]);
      const oneByOne: OutcomeLog = { append: appendOne, close: async () => undefined };
      if (ref.type !== 'objects' || indexes.length === 0) return oneByOne;
      const objects = objectsFor(ref.url);
      const lowest = Math.min(...indexes);
      const highest = Math.max(...indexes);
      const name = joinUrl(ref.url, `log-${pad(lowest)}-${pad(highest)}-${randomUUID().replace(/-/g, '')}`);
      const outside = (outcome: RequestOutcome): boolean => outcome.index < lowest || outcome.index > highest;
      const line = (outcome: RequestOutcome): string => sealLine(JSON.stringify(outcome)) + '\n';
      if (objects.openAppend) {
        const appender = objects.openAppend(`${name}.jsonl`);
        return {
          append: (outcome) => (outside(outcome) ? appendOne(outcome) : appender.append(line(outcome))),
          close: () => appender.close(),
        };
      }
      // A log holds back only as many answers as workflows allow for when a run is lost (S3);
      // where they allow none, each answer is written on its own.
      const perObject = unwrittenRunAnswersAtMost(ref) + 1;
      if (perObject === 1) return oneByOne;
      let pending: string[] = [];
      let part = 0;
      let lastWriteAt = Date.now();
      const writePending = async (): Promise<void> => {
        if (pending.length === 0) return;
        // A failed write keeps its lines pending: the next write (or the run's close) tries again.
        await objects.write(`${name}-${part}.jsonl`, pending.join(''));
        pending = [];
        part += 1;
        lastWriteAt = Date.now();
      };
      return {
        async append(outcome) {
          if (outside(outcome)) return appendOne(outcome);
          pending.push(line(outcome));
          if (pending.length >= perObject || Date.now() - lastWriteAt >= RUN_LOG_WRITE_AFTER_MS)
            await writePending();
        },
        close: writePending,
      };
    },

    async readSingleOutcomes(ref, indexes) {
      if (ref.type !== 'objects' || indexes.length === 0) return [];
      const wanted = new Set(indexes);
      const { singles, logs } = await listResults(ref.url);
      const found = await readLogs(
        logs.filter((log) => indexes.some((i) => i >= log.lowest && i <= log.highest)),
        (index) => wanted.has(index),
      );
      const mine = singles.filter((s) => wanted.has(s.index));
      for (const outcomes of await mapLimited(mine, READ_PARALLELISM, (s) => readLines(s.url))) {
        for (const outcome of outcomes) found.set(outcome.index, outcome);
      }
      return [...found.values()].sort((a, b) => a.index - b.index);
    },

    async compactOutcomes(ref, startIndex, endIndex) {
      if (ref.type !== 'objects') return;
      const { pages, singles, logs } = await listResults(ref.url);
      const inPage = (index: number): boolean => index >= startIndex && index < endIndex;
      const mine = singles.filter((s) => inPage(s.index));
      const myLogs = logs.filter((log) => log.lowest < endIndex && log.highest >= startIndex);
      if (mine.length === 0 && myLogs.length === 0) return;
      const pageUrl = joinUrl(ref.url, `page-${pad(startIndex)}-${pad(endIndex)}.jsonl`);
      const byIndex = new Map<number, RequestOutcome>();
      // A crash after the page was written but before every single was deleted leaves both:
      // the page is kept and the singles still there are folded in again.
      if (pages.some((p) => p.url === pageUrl)) {
        for (const outcome of await readLines(pageUrl)) byIndex.set(outcome.index, outcome);
      }
      const logged = await mapLimited(myLogs, READ_PARALLELISM, (log) => readLog(log.url));
      for (const outcome of logged.flat()) if (inPage(outcome.index)) byIndex.set(outcome.index, outcome);
      for (const outcomes of await mapLimited(mine, READ_PARALLELISM, (s) => readLines(s.url))) {
        for (const outcome of outcomes) byIndex.set(outcome.index, outcome);
      }
      if (byIndex.size === 0) return;
      const lines = [...byIndex.values()]
        .sort((a, b) => a.index - b.index)
        .map((o) => sealLine(JSON.stringify(o)));
      await objectsFor(pageUrl).write(pageUrl, lines.join('\n') + '\n');
      await objectsFor(pageUrl).remove(mine.map((s) => s.url));
      if (myLogs.length === 0) return;
      // A log also holding requests of a page not compacted yet stays until that page is. Pages
      // are listed again after this one is written, so of two compactions sharing a log at
      // least the later one sees both pages and deletes it.
      const { pages: pagesNow } = await listResults(ref.url);
      const paged = (index: number): boolean => pagesNow.some((p) => index >= p.start && index < p.end);
      // A log with no whole line yet may be one a run has just opened: it is never deleted.
      const done = myLogs.filter((_, i) => logged[i]!.length > 0 && logged[i]!.every((o) => paged(o.index)));
      await objectsFor(pageUrl).remove(done.map((log) => log.url));
    },

    async *readOutcomes(ref) {
      if (ref.type === 'jsonl') {
        yield* readLegacyResults(ref.path, (line) => openLine(line, ref.path));
        return;
      }
      const { pages, singles, logs } = await listResults(ref.url);
      // Logs hold the outcomes of runs whose pages are not compacted yet: few, so read at once.
      // An outcome in its own object wins over the same request's in a log (a later rewrite).
      const ownObject = new Set(singles.map((s) => s.index));
      const logged = await readLogs(logs, (index) => !ownObject.has(index));
      const loose: LooseOutcome[] = [
        ...singles,
        ...[...logged.values()].map((outcome) => ({ index: outcome.index, outcome })),
      ].sort((a, b) => a.index - b.index);
      const readLoose = async (item: LooseOutcome): Promise<RequestOutcome[]> =>
        'outcome' in item ? [item.outcome] : readLines(item.url);
      let next = 0;
      const flushLooseBelow = async function* (limit: number): AsyncGenerator<RequestOutcome> {
        const due: LooseOutcome[] = [];
        while (next < loose.length && loose[next]!.index < limit) due.push(loose[next++]!);
        for (let i = 0; i < due.length; i += READ_PARALLELISM) {
          const chunk = await mapLimited(due.slice(i, i + READ_PARALLELISM), READ_PARALLELISM, readLoose);
          for (const outcomes of chunk) yield* outcomes;
        }
      };
      for (const page of pages) {
        yield* flushLooseBelow(page.start);
        const outcomes = await readLines(page.url);
        // Outcomes the page already holds (left by an interrupted compaction) are not read twice.
        const held = new Set(outcomes.map((o) => o.index));
        const extra: LooseOutcome[] = [];
        for (; next < loose.length && loose[next]!.index < page.end; next++) {
          if (!held.has(loose[next]!.index)) extra.push(loose[next]!);
        }
        for (const more of await mapLimited(extra, READ_PARALLELISM, readLoose)) outcomes.push(...more);
        yield* extra.length > 0 ? outcomes.sort((a, b) => a.index - b.index) : outcomes;
      }
      yield* flushLooseBelow(Number.POSITIVE_INFINITY);
    },

    async remove(urls) {
      for (const url of urls) await objectsFor(url).remove([url]);
    },

    async batchObjects(batchId) {
      const prefix = batchPrefix(batchId);
      return objectsFor(prefix).list(prefix);
    },

    async purge(batchId) {
      const prefix = batchPrefix(batchId);
      const urls = await objectsFor(prefix).list(prefix);
      await objectsFor(prefix).remove(urls);
      return urls.length;
    },
  };
}

/** Seals each line of a JSONL stream, keeping one record per line. */
function sealLines(sealer: LineSealer): Transform {
  let pending = '';
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      const text = pending + chunk.toString('utf8');
      const lines = text.split('\n');
      pending = lines.pop() ?? '';
      done(null, lines.map((line) => (line.trim() === '' ? '' : sealer.seal(line)) + '\n').join(''));
    },
    flush(done) {
      done(null, pending.trim() === '' ? '' : sealer.seal(pending) + '\n');
    },
  });
}

/** Outcomes of an append-only results file (earlier versions): latest line per id, in input order. */
async function* readLegacyResults(
  file: string,
  open: (line: string) => string,
): AsyncGenerator<RequestOutcome> {
  const latest = new Map<string, RequestOutcome>();
  const lines = readline.createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    const outcome = JSON.parse(open(line)) as RequestOutcome;
    latest.set(outcome.id, outcome);
  }
  yield* [...latest.values()].sort((a, b) => a.index - b.index);
}

/** Counts the requests of a local JSONL file without holding it whole (blank lines do not count). */
export async function countJsonlRequests(file: string): Promise<number> {
  let count = 0;
  const lines = readline.createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  for await (const line of lines) if (line.trim() !== '') count++;
  return count;
}

/** Collects {@link BatchStore.readOutcomes} into an array (for callers that want every outcome at once). */
export async function collectOutcomes(outcomes: AsyncIterable<RequestOutcome>): Promise<RequestOutcome[]> {
  const all: RequestOutcome[] = [];
  for await (const outcome of outcomes) all.push(outcome);
  return all;
}
