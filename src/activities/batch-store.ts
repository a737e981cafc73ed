import { createReadStream } from 'node:fs';
import { appendFile, mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { parseBatchJsonl } from '../client/jsonl';
import type { BatchRequest, RequestOutcome, RequestSource, ResultsRef } from '../shared';

/**
 * Where large batches keep what does not fit in a workflow history: their requests, read page
 * by page, and their outcomes, appended one per request. The JSONL-file store serves a single
 * machine; an object store can implement the same interface.
 */
export interface BatchStore {
  /** Up to `limit` requests of `source` from `byteOffset` on, and where the next page starts. */
  readRequestPage(
    source: RequestSource,
    byteOffset: number,
    limit: number,
  ): Promise<{ requests: BatchRequest[]; nextByteOffset: number }>;
  /** Where the outcomes of batch `batchId` go. */
  resultsRefFor(batchId: string): ResultsRef;
  /** Appends outcomes; writing one again (a retried activity) is harmless: the latest line wins. */
  appendOutcomes(ref: ResultsRef, outcomes: readonly RequestOutcome[]): Promise<void>;
  /** Every outcome, one per request id (the latest written), in input order. */
  readOutcomes(ref: ResultsRef): Promise<RequestOutcome[]>;
}

/** Options of {@link createJsonlFileStore}. */
export interface JsonlFileStoreOptions {
  /** Folder for the results files (default `MARITACA_RESULTS_DIR`, then `.maritaca-batch/results`). */
  resultsDir?: string;
}

/** Default folder of results files. */
export function defaultResultsDir(): string {
  return path.resolve(process.env.MARITACA_RESULTS_DIR?.trim() || path.join('.maritaca-batch', 'results'));
}

const READ_CHUNK_BYTES = 256 * 1024;
const NEWLINE = 0x0a;

/** A {@link BatchStore} on local JSONL files. */
export function createJsonlFileStore(options: JsonlFileStoreOptions = {}): BatchStore {
  const resultsDir = path.resolve(options.resultsDir ?? defaultResultsDir());
  // Appends to one file are chained so concurrent calls in this process never interleave lines.
  const appendQueues = new Map<string, Promise<void>>();

  return {
    async readRequestPage(source, byteOffset, limit) {
      const handle = await open(source.path, 'r');
      try {
        const lines: Buffer[] = [];
        let pending = Buffer.alloc(0);
        let position = byteOffset;
        let consumed = byteOffset;
        let found = 0;
        const buffer = Buffer.alloc(READ_CHUNK_BYTES);
        while (found < limit) {
          const { bytesRead } = await handle.read(buffer, 0, READ_CHUNK_BYTES, position);
          if (bytesRead === 0) {
            if (pending.length > 0) {
              lines.push(pending);
              consumed += pending.length;
              if (pending.toString('utf8').trim() !== '') found++;
            }
            break;
          }
          position += bytesRead;
          let chunk = Buffer.concat([pending, buffer.subarray(0, bytesRead)]);
          let newline = chunk.indexOf(NEWLINE);
          while (newline !== -1 && found < limit) {
            const line = chunk.subarray(0, newline + 1);
            lines.push(line);
            consumed += line.length;
            if (line.toString('utf8').trim() !== '') found++;
            chunk = chunk.subarray(newline + 1);
            newline = chunk.indexOf(NEWLINE);
          }
          pending = Buffer.from(chunk);
          if (found >= limit) break;
        }
        const text = Buffer.concat(lines).toString('utf8');
        const requests = text.trim() === '' ? [] : parseBatchJsonl(text).requests;
        return { requests, nextByteOffset: consumed };
      } finally {
        await handle.close();
      }
    },

    resultsRefFor(batchId) {
      return { type: 'jsonl', path: path.join(resultsDir, `${encodeURIComponent(batchId)}.jsonl`) };
    },

    async appendOutcomes(ref, outcomes) {
      if (outcomes.length === 0) return;
      const text = outcomes.map((o) => JSON.stringify(o)).join('\n') + '\n';
      const previous = appendQueues.get(ref.path) ?? Promise.resolve();
      const next = previous.then(async () => {
        try {
          await appendFile(ref.path, text);
        } catch (err) {
          // The folder is made on the first write only, not checked on every call's hot path.
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
          await mkdir(path.dirname(ref.path), { recursive: true });
          await appendFile(ref.path, text);
        }
      });
      appendQueues.set(
        ref.path,
        next.catch(() => undefined),
      );
      await next;
    },

    async readOutcomes(ref) {
      const latest = new Map<string, RequestOutcome>();
      const lines = readline.createInterface({ input: createReadStream(ref.path), crlfDelay: Infinity });
      for await (const line of lines) {
        if (line.trim() === '') continue;
        const outcome = JSON.parse(line) as RequestOutcome;
        latest.set(outcome.id, outcome);
      }
      return [...latest.values()].sort((a, b) => a.index - b.index);
    },
  };
}

/** Counts the requests of a JSONL file without holding it whole (blank lines do not count). */
export async function countJsonlRequests(file: string): Promise<number> {
  let count = 0;
  const lines = readline.createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  for await (const line of lines) if (line.trim() !== '') count++;
  return count;
}

/** Reads a results file written by {@link createJsonlFileStore} (what the client does for `result()`). */
export async function readResultsFile(ref: ResultsRef): Promise<RequestOutcome[]> {
  return createJsonlFileStore({ resultsDir: path.dirname(ref.path) }).readOutcomes(ref);
}
