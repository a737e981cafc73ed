import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { encryptionKeysFromEnv, type EncryptionKeys } from './keys';

export { encryptionKeysFromEnv, type EncryptionKeys } from './keys';

/** Metadata `encoding` of a payload this codec encrypted. */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
/** Metadata key naming the key that encrypted a payload, so old keys keep decrypting after rotation. */
export const KEY_ID_METADATA = 'encryption-key-id';

const IV_BYTES = 12;
const TAG_BYTES = 16;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Encrypts every payload (prompts, answers, results) with AES-256-GCM before it leaves the
 * process, so Temporal's database holds ciphertext only. Each payload names the key id that
 * sealed it; rotating means a new `keyId` with the old key moved to `previousKeys`.
 */
export class AesGcmPayloadCodec implements PayloadCodec {
  private readonly keys: Map<string, Uint8Array>;

  constructor(private readonly config: EncryptionKeys) {
    this.keys = new Map(Object.entries(config.previousKeys ?? {}));
    this.keys.set(config.keyId, config.key);
    for (const [id, key] of this.keys) {
      if (key.length !== 32)
        throw new Error(`Encryption key "${id}" must be 32 bytes (AES-256), got ${key.length}`);
    }
  }

  /** Encrypts each payload whole (metadata included) into a new opaque payload. */
  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const plain = temporal.api.common.v1.Payload.encode(payload).finish();
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', this.config.key, iv);
      const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: {
          encoding: encoder.encode(ENCRYPTED_ENCODING),
          [KEY_ID_METADATA]: encoder.encode(this.config.keyId),
        },
        data: sealed,
      };
    });
  }

  /** Decrypts payloads this codec (or one holding the same keys) encrypted; leaves others as they are. */
  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const encoding = payload.metadata?.encoding;
      if (!encoding || decoder.decode(encoding) !== ENCRYPTED_ENCODING) return payload;
      const idBytes = payload.metadata?.[KEY_ID_METADATA];
      const keyId = idBytes ? decoder.decode(idBytes) : '';
      const key = this.keys.get(keyId);
      if (!key) throw new Error(`No decryption key with id "${keyId}": add it to the previous keys`);
      const data = Buffer.from(payload.data ?? new Uint8Array());
      const iv = data.subarray(0, IV_BYTES);
      const tag = data.subarray(data.length - TAG_BYTES);
      const body = data.subarray(IV_BYTES, data.length - TAG_BYTES);
      const decipher = createDecipheriv('aes-256-gcm', key, iv);
      decipher.setAuthTag(tag);
      const plain = Buffer.concat([decipher.update(body), decipher.final()]);
      return temporal.api.common.v1.Payload.decode(plain) as Payload;
    });
  }
}

/** The codec from the environment, or `undefined` when encryption is not configured. */
export function codecFromEnv(env: NodeJS.ProcessEnv = process.env): AesGcmPayloadCodec | undefined {
  const keys = encryptionKeysFromEnv(env);
  return keys ? new AesGcmPayloadCodec(keys) : undefined;
}
