import { randomBytes } from 'node:crypto';
import { Client } from '@temporalio/client';
import {
  AesGcmPayloadCodec,
  MaritacaBatchClient,
  startCodecServer,
  type RunningCodecServer,
} from '../../src';
import { questions, startTestContext, type TestContext } from '../helpers/context';
import { historyText } from '../helpers/history';

const oldKey = randomBytes(32);
const newKey = randomBytes(32);
const SECRET_PROMPT = 'Pergunta confidencial sobre o contrato 4711';

describe('payload encryption', () => {
  test('round-trips, rotates by key id, and refuses a payload with an unknown key', async () => {
    const before = new AesGcmPayloadCodec({ keyId: 'k1', key: oldKey });
    const after = new AesGcmPayloadCodec({ keyId: 'k2', key: newKey, previousKeys: { k1: oldKey } });
    const payload = { metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from('"olá"') };
    const [sealedOld] = await before.encode([payload]);
    const [sealedNew] = await after.encode([payload]);
    expect(Buffer.from(sealedOld!.data!).toString()).not.toContain('olá');
    for (const sealed of [sealedOld!, sealedNew!]) {
      const [opened] = await after.decode([sealed]);
      expect(Buffer.from(opened!.data!).toString()).toBe('"olá"');
    }
    await expect(before.decode([sealedNew!])).rejects.toThrow(/No decryption key with id "k2"/);
    expect(() => new AesGcmPayloadCodec({ keyId: 'short', key: randomBytes(16) })).toThrow(/32 bytes/);
  });

  describe('a batch with encrypted payloads', () => {
    let ctx: TestContext;
    let codecServer: RunningCodecServer;
    const keys = { keyId: 'k2', key: newKey, previousKeys: { k1: oldKey } };

    beforeAll(async () => {
      ctx = await startTestContext({}, { encryption: keys });
      codecServer = await startCodecServer({
        codec: new AesGcmPayloadCodec(keys),
        token: 'codec-token-123',
        uiOrigin: 'http://localhost:8233',
        port: 0,
      });
    });
    afterAll(async () => {
      await ctx?.close();
      await codecServer?.close();
    });

    test('prompts and answers are unreadable in history without the key; the codec server decodes with the token', async () => {
      const codec = new AesGcmPayloadCodec(keys);
      const batches = new MaritacaBatchClient({
        client: new Client({
          connection: ctx.temporal.connection,
          dataConverter: { payloadCodecs: [codec] },
        }),
        taskQueue: ctx.taskQueue,
      });
      const requests = [
        { id: 'secret', messages: [{ role: 'user' as const, content: SECRET_PROMPT }] },
        ...questions(2),
      ];
      const handle = await batches.start(requests, { autoApproveBelow: 10 });
      const result = await handle.result();
      expect(result.results[0]!.ok && result.results[0]!.result.generations[0]!.text).toContain(
        SECRET_PROMPT,
      );

      // What Temporal stored: ciphertext only.
      const plainClient = ctx.temporal;
      const stored = await historyText(plainClient, handle.batchId);
      expect(stored).toContain(Buffer.from('binary/encrypted').toString('base64'));
      expect(stored).not.toContain(SECRET_PROMPT);
      expect(stored).not.toContain('contrato 4711');

      // The codec server: no token, no plaintext.
      const history = await plainClient.workflow.getHandle(handle.batchId).fetchHistory();
      const input = history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
      const body = JSON.stringify({
        payloads: [
          {
            metadata: Object.fromEntries(
              Object.entries(input.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
            ),
            data: Buffer.from(input.data!).toString('base64'),
          },
        ],
      });
      const refused = await fetch(`${codecServer.url}/decode`, { method: 'POST', body });
      expect(refused.status).toBe(401);
      const wrong = await fetch(`${codecServer.url}/decode`, {
        method: 'POST',
        body,
        headers: { authorization: 'Bearer not-the-token' },
      });
      expect(wrong.status).toBe(401);
      const decoded = await fetch(`${codecServer.url}/decode`, {
        method: 'POST',
        body,
        headers: { authorization: 'Bearer codec-token-123', origin: 'http://localhost:8233' },
      });
      expect(decoded.status).toBe(200);
      expect(decoded.headers.get('access-control-allow-origin')).toBe('http://localhost:8233');
      const { payloads } = (await decoded.json()) as { payloads: { data: string }[] };
      expect(Buffer.from(payloads[0]!.data, 'base64').toString()).toContain(SECRET_PROMPT);
      const viaPath = await fetch(`${codecServer.url}/codec-token-123/decode`, { method: 'POST', body });
      expect(viaPath.status).toBe(200);

      const otherOrigin = await fetch(`${codecServer.url}/decode`, {
        method: 'OPTIONS',
        headers: { origin: 'http://evil.example' },
      });
      expect(otherOrigin.status).toBe(403);
      expect(otherOrigin.headers.get('access-control-allow-origin')).toBeNull();
    });
  });
});
