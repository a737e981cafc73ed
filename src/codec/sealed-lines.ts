import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { EncryptionKeys } from './keys';

/** Prefix of a sealed line: format version, then the key id, then base64 of iv | ciphertext | tag. */
const SEALED_PREFIX = 'mbx1.';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Seals and opens single lines of JSONL objects. Each line is encrypted on its own so a sealed
 * file keeps one record per line and can still be paged with ranged reads by byte offset.
 */
export interface LineSealer {
  /** Encrypts one line (without its newline); the result holds no newline either. */
  seal(line: string): string;
  /** Decrypts a line {@link seal} produced; plain lines come back unchanged. */
  open(line: string): string;
}

/** Whether a stored line was sealed (so a reader without keys can say why it cannot read it). */
export function isSealedLine(line: string): boolean {
  return line.startsWith(SEALED_PREFIX);
}

/**
 * A {@link LineSealer} on AES-256-GCM with the same key set as the payload codec, so one key
 * (and one rotation) protects both what Temporal stores and what the batch store holds.
 */
export function createLineSealer(keys: EncryptionKeys): LineSealer {
  const byId = new Map<string, Uint8Array>(Object.entries(keys.previousKeys ?? {}));
  byId.set(keys.keyId, keys.key);
  for (const [id, key] of byId) {
    if (key.length !== 32)
      throw new Error(`Encryption key "${id}" must be 32 bytes (AES-256), got ${key.length}`);
    if (id.includes('.')) throw new Error(`Encryption key id "${id}" must not contain "."`);
  }
  return {
    seal(line) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', keys.key, iv);
      const sealed = Buffer.concat([iv, cipher.update(line, 'utf8'), cipher.final(), cipher.getAuthTag()]);
      return `${SEALED_PREFIX}${keys.keyId}.${sealed.toString('base64')}`;
    },
    open(line) {
      if (!isSealedLine(line)) return line;
      const rest = line.slice(SEALED_PREFIX.length);
      const dot = rest.indexOf('.');
      const keyId = rest.slice(0, dot);
      const key = byId.get(keyId);
      if (dot <= 0 || !key)
        throw new Error(`No decryption key with id "${keyId}": add it to the previous keys`);
      const data = Buffer.from(rest.slice(dot + 1).trimEnd(), 'base64');
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      return Buffer.concat([
        decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)),
        decipher.final(),
      ]).toString('utf8');
    },
  };
}
