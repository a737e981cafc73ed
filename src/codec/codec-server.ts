import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';

/** Options of {@link startCodecServer}. */
export interface CodecServerOptions {
  codec: PayloadCodec;
  /** Bearer token every request must carry (header `Authorization: Bearer <token>`, or `/<token>/` as first path segment). */
  token: string;
  /** The one browser origin allowed to call it, e.g. the Temporal UI's `http://localhost:8233`. */
  uiOrigin: string;
  /** Port (default 8888; 0 picks a free one). */
  port?: number;
  /** Interface (default 127.0.0.1). */
  host?: string;
}

/** A running codec server. */
export interface RunningCodecServer {
  /** Base URL to give the UI as its codec endpoint (without the token). */
  url: string;
  port: number;
  close(): Promise<void>;
}

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

const fromJson = (p: JsonPayload): Payload => ({
  metadata: Object.fromEntries(
    Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')]),
  ),
  data: Buffer.from(p.data ?? '', 'base64'),
});
const toJson = (p: Payload): JsonPayload => ({
  metadata: Object.fromEntries(
    Object.entries(p.metadata ?? {}).map(([k, v]) => [
      k,
      Buffer.from(v ?? new Uint8Array()).toString('base64'),
    ]),
  ),
  data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
});

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Serves Temporal's codec server protocol (`POST /encode`, `POST /decode`) so the Temporal UI
 * and CLI can show encrypted payloads to people who hold the token. Cross-origin calls are
 * allowed from `uiOrigin` only.
 */
export async function startCodecServer(options: CodecServerOptions): Promise<RunningCodecServer> {
  if (!options.token) throw new Error('The codec server needs a token (MARITACA_CODEC_TOKEN)');
  const server = http.createServer((req, res) => {
    const origin = req.headers.origin;
    if (origin === options.uiOrigin) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'Content-Type, X-Namespace, Authorization');
      res.setHeader('Vary', 'Origin');
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(origin === options.uiOrigin ? 204 : 403).end();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://codec');
    const segments = url.pathname.split('/').filter(Boolean);
    const header = req.headers.authorization ?? '';
    const bearer = header.startsWith('Bearer ') ? header.slice('Bearer '.length) : '';
    // The dev server's UI cannot send a header, so the token may also lead the path.
    const inPath = segments.length === 2 && sameSecret(segments[0]!, options.token);
    if (!inPath && !sameSecret(bearer, options.token)) {
      res
        .writeHead(401, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: 'a valid bearer token is required' }));
      return;
    }
    const action = segments.at(-1);
    if (req.method !== 'POST' || (action !== 'encode' && action !== 'decode')) {
      res.writeHead(404).end();
      return;
    }
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      void (async () => {
        try {
          const { payloads } = JSON.parse(body) as { payloads: JsonPayload[] };
          const input = payloads.map(fromJson);
          const output =
            action === 'encode' ? await options.codec.encode(input) : await options.codec.decode(input);
          res
            .writeHead(200, { 'content-type': 'application/json' })
            .end(JSON.stringify({ payloads: output.map(toJson) }));
        } catch (err) {
          res
            .writeHead(400, { 'content-type': 'application/json' })
            .end(JSON.stringify({ error: (err as Error).message }));
        }
      })();
    });
  });
  await new Promise<void>((resolve) =>
    server.listen(options.port ?? 8888, options.host ?? '127.0.0.1', resolve),
  );
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
