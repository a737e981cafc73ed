import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import {
  mkdir,
  open,
  readdir,
  type FileHandle,
  readFile,
  rename,
  rmdir,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { StoreAccessError, type ObjectAppender, type ObjectStorage } from './object-storage';

const PERMANENT_CODES = new Set(['ENOENT', 'EACCES', 'EPERM', 'ENOTDIR', 'EISDIR']);

function fail(operation: string, url: string, err: unknown): StoreAccessError {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  return new StoreAccessError(operation, url, err, PERMANENT_CODES.has(code));
}

/** Writes through a temporary file and a rename, so a reader never sees half an object. */
async function writeWhole(file: string, write: (temporary: string) => Promise<void>): Promise<void> {
  const temporary = `${file}.${randomUUID()}.partial`;
  try {
    await write(temporary);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    // The folder is made on the first write only, not checked on every write.
    await mkdir(path.dirname(file), { recursive: true });
    await write(temporary);
  }
  await rename(temporary, file);
}

async function walk(dir: string, out: string[]): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) await walk(full, out);
    else if (!entry.name.endsWith('.partial')) out.push(full);
  }
}

/**
 * {@link ObjectStorage} on a local (or shared, mounted) folder: `file:///path` URLs. Writes are
 * atomic by rename, as S3's are by nature.
 */
export function createFileObjectStorage(): ObjectStorage {
  return {
    async read(url, range) {
      const file = fileURLToPath(url);
      try {
        if (!range) return await readFile(file);
        const handle = await open(file, 'r');
        try {
          const buffer = Buffer.alloc(Math.max(0, range.end - range.start));
          const { bytesRead } = await handle.read(buffer, 0, buffer.length, range.start);
          return buffer.subarray(0, bytesRead);
        } finally {
          await handle.close();
        }
      } catch (err) {
        throw fail('read', url, err);
      }
    },

    async write(url, body) {
      const file = fileURLToPath(url);
      try {
        await writeWhole(file, (temporary) => writeFile(temporary, body));
      } catch (err) {
        throw fail('write', url, err);
      }
    },

    async upload(url, body) {
      const file = fileURLToPath(url);
      try {
        await mkdir(path.dirname(file), { recursive: true });
        await writeWhole(file, (temporary) => pipeline(body, createWriteStream(temporary)));
      } catch (err) {
        throw fail('write', url, err);
      }
    },

    async size(url) {
      try {
        return (await stat(fileURLToPath(url))).size;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw fail('read', url, err);
      }
    },

    async list(prefix) {
      const dir = fileURLToPath(prefix);
      const files: string[] = [];
      try {
        await walk(dir, files);
      } catch (err) {
        throw fail('list', prefix, err);
      }
      return files.map((file) => pathToFileURL(file).href).sort();
    },

    openAppend(url): ObjectAppender {
      const file = fileURLToPath(url);
      let handle: Promise<FileHandle> | undefined;
      const openOnce = async (): Promise<FileHandle> => {
        try {
          return await open(file, 'a');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
          await mkdir(path.dirname(file), { recursive: true });
          return open(file, 'a');
        }
      };
      return {
        async append(text) {
          handle ??= openOnce();
          let opened: FileHandle;
          try {
            opened = await handle;
          } catch (err) {
            handle = undefined;
            throw fail('write', url, err);
          }
          try {
            await opened.appendFile(text);
          } catch (err) {
            throw fail('write', url, err);
          }
        },
        async close() {
          const opened = handle;
          handle = undefined;
          if (opened) await (await opened).close();
        },
      };
    },

    async remove(urls) {
      for (const url of urls) {
        try {
          await unlink(fileURLToPath(url));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fail('delete', url, err);
        }
      }
      // Empty folders left behind are removed too, so a purged batch leaves nothing.
      const dirs = new Set(urls.map((url) => path.dirname(fileURLToPath(url))));
      for (const dir of [...dirs].sort((a, b) => b.length - a.length)) {
        await rmdir(dir).catch(() => undefined);
      }
    },
  };
}
