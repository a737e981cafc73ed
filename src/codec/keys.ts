/** AES-256 keys shared by the payload codec and the batch store: one to seal with, older ones to open with. */
export interface EncryptionKeys {
  /** Id of the key new payloads are encrypted with. */
  keyId: string;
  /** 32-byte AES-256 key. */
  key: Uint8Array;
  /** Earlier keys by id, still used to decrypt what they encrypted. */
  previousKeys?: Record<string, Uint8Array>;
}

/**
 * Keys from the environment: `MARITACA_ENCRYPTION_KEY` (base64, 32 bytes) and
 * `MARITACA_ENCRYPTION_KEY_ID`, plus `MARITACA_ENCRYPTION_PREVIOUS_KEYS` as `id:base64,id:base64`.
 * Returns `undefined` when no key is set (payloads stay plain).
 */
export function encryptionKeysFromEnv(env: NodeJS.ProcessEnv = process.env): EncryptionKeys | undefined {
  const key = env.MARITACA_ENCRYPTION_KEY?.trim();
  if (!key) return undefined;
  const keyId = env.MARITACA_ENCRYPTION_KEY_ID?.trim() || 'default';
  const previousKeys: Record<string, Uint8Array> = {};
  for (const entry of (env.MARITACA_ENCRYPTION_PREVIOUS_KEYS ?? '').split(',').map((e) => e.trim())) {
    if (!entry) continue;
    const at = entry.indexOf(':');
    if (at <= 0) throw new Error('MARITACA_ENCRYPTION_PREVIOUS_KEYS must be a list of id:base64-key');
    previousKeys[entry.slice(0, at)] = Buffer.from(entry.slice(at + 1), 'base64');
  }
  return { keyId, key: Buffer.from(key, 'base64'), previousKeys };
}
