import { Command, CommanderError } from 'commander';
import { registerFakeServerCommand } from '../../src/cli/fake-server-command';
import {
  startFakeMaritaca,
  type FakeMaritacaServer,
  type FakeMaritacaStats,
} from '../../src/testing/fake-maritaca';
import { waitFor } from '../helpers/wait';
import { fakeServersFor } from '../helpers/fake-servers';

const API_KEY = 'sk-fake-outage-key-0123456789';
const start = fakeServersFor(API_KEY);

function request(content: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: 'sabia-4', messages: [{ role: 'user', content }], ...extra };
}

function chat(
  server: FakeMaritacaServer,
  body: unknown,
  options: { key?: string | null; path?: string } = {},
): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const key = options.key === undefined ? API_KEY : options.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  return fetch(`${server.url}${options.path ?? ''}/chat/completions`, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

function config(server: FakeMaritacaServer, body: unknown): Promise<Response> {
  return fetch(`${server.url}/_config`, { method: 'POST', body: JSON.stringify(body) });
}

/** Bodies are checked field by field against what the fake promises, so a loose type is enough. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function readJson(response: Response): Promise<any> {
  return response.json();
}

/** How a call ended: its HTTP status, or the code of the network error that stopped it. */
async function outcome(call: Promise<Response>): Promise<number | string> {
  try {
    const response = await call;
    await response.arrayBuffer();
    return response.status;
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause;
    return cause?.code ?? String(error);
  }
}

/** Polls over HTTP, as a client outside the process would, until the port answers `/_stats`. */
function statsOverHttpOnceUp(server: FakeMaritacaServer): Promise<FakeMaritacaStats | undefined> {
  return waitFor(
    async () => {
      try {
        return (await readJson(await fetch(`${server.url}/_stats`))) as FakeMaritacaStats;
      } catch {
        return undefined;
      }
    },
    (stats) => stats !== undefined,
    { timeoutMs: 10_000, intervalMs: 20, what: 'the port to accept connections again' },
  );
}

/** A connection stopped by the server being down: refused, or reset if a pooled one was reused. */
const CONNECTION_FAILURES = ['ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE'];

describe('fake Maritaca outage "unavailable"', () => {
  it('answers every chat call 503 at once, before the key check, unbilled and counted exactly', async () => {
    const server = await start({ latencyMs: 5_000 });
    expect(server.stats()).toMatchObject({
      outage: null,
      outageCalls: 0,
      outageStartedAt: null,
      outageEndedAt: null,
    });
    const before = Date.now();
    server.configure({ outage: 'unavailable' });
    expect(server.stats().outage).toBe('unavailable');
    expect(server.stats().outageStartedAt).toBeGreaterThanOrEqual(before);

    const started = Date.now();
    const answers = await Promise.all([
      chat(server, request('oi')),
      chat(server, request('oi'), { key: 'wrong' }),
      chat(server, '{not json'),
      chat(server, request('oi'), { path: '/api/v1' }),
    ]);
    // The configured 5 s latency does not apply: the service behind the gateway never sees them.
    expect(Date.now() - started).toBeLessThan(2_000);
    for (const answer of answers) {
      expect(answer.status).toBe(503);
      expect(await readJson(answer)).toEqual({
        detail: 'Service temporarily unavailable. Please try again later.',
      });
    }
    const models = await fetch(`${server.url}/models`, { headers: { authorization: `Bearer ${API_KEY}` } });
    expect(models.status).toBe(503);

    // The control endpoints stay reachable, so a test can look and end it over HTTP.
    const stats = (await readJson(await fetch(`${server.url}/_stats`))) as FakeMaritacaStats;
    expect(stats).toMatchObject({
      outage: 'unavailable',
      outageCalls: 4,
      totalRequests: 4,
      byStatus: { '503': 4 },
      outageEndedAt: null,
    });
    expect(stats.billed.calls).toBe(0);

    const ended = server.outageEnded();
    expect((await config(server, { outage: null })).status).toBe(200);
    await ended;
    expect(server.stats().outage).toBeNull();
    expect(server.stats().outageEndedAt).toBeGreaterThanOrEqual(stats.outageStartedAt as number);
    server.configure({ latencyMs: null });
    expect((await chat(server, request('oi'))).status).toBe(200);
    expect(server.stats()).toMatchObject({ outageCalls: 4, totalRequests: 5 });
  });

  it('ends by itself after outageForMs, set through POST /_config', async () => {
    const server = await start();
    expect((await config(server, { outage: 'unavailable', outageForMs: 300 })).status).toBe(200);
    expect((await chat(server, request('oi'))).status).toBe(503);
    const stats = await waitFor(
      async () => (await readJson(await fetch(`${server.url}/_stats`))) as FakeMaritacaStats,
      (current) => current.outageEndedAt !== null,
      { timeoutMs: 10_000, intervalMs: 20, what: 'the outage to end' },
    );
    expect(stats.outage).toBeNull();
    // Timers never fire early; the bound below allows for the clock's millisecond rounding.
    expect((stats.outageEndedAt as number) - (stats.outageStartedAt as number)).toBeGreaterThanOrEqual(295);
    expect(stats.outageCalls).toBeGreaterThanOrEqual(1);
    // Ending the outage clears its duration too, so the next outage does not inherit it.
    expect(server.behaviour()).not.toHaveProperty('outage');
    expect(server.behaviour()).not.toHaveProperty('outageForMs');
    expect((await chat(server, request('oi'))).status).toBe(200);
  });

  it('is ended by reset(), which also clears outageCalls', async () => {
    const server = await start({ outage: 'unavailable' });
    expect(server.stats().outage).toBe('unavailable');
    expect((await chat(server, request('oi'))).status).toBe(503);
    const reset = (await readJson(
      await fetch(`${server.url}/_reset`, { method: 'POST' }),
    )) as FakeMaritacaStats;
    expect(reset).toMatchObject({ outage: null, outageCalls: 0, totalRequests: 0 });
    expect(reset.outageEndedAt).not.toBeNull();
    expect((await chat(server, request('oi'))).status).toBe(200);
  });
});

describe('fake Maritaca outage "refused"', () => {
  it('refuses connections on the same port until configure ends it, then serves there again', async () => {
    const server = await start();
    const { url, port } = server;
    server.configure({ outage: 'refused' });
    expect(server.stats().outage).toBe('refused');

    expect(await outcome(chat(server, request('oi')))).toBe('ECONNREFUSED');
    expect(await outcome(fetch(`${server.url}/_stats`))).toBe('ECONNREFUSED');
    // Calls that never reach the server cannot be counted.
    expect(server.stats()).toMatchObject({ totalRequests: 0, outageCalls: 0, outageEndedAt: null });

    const ended = server.outageEnded();
    server.configure({ outage: null });
    await ended;
    expect(server.stats().outage).toBeNull();
    expect(server.stats().outageEndedAt).toBeGreaterThanOrEqual(server.stats().outageStartedAt as number);
    expect(server.url).toBe(url);
    expect(server.port).toBe(port);
    expect(await outcome(chat(server, request('oi')))).toBe(200);
    expect(server.stats().totalRequests).toBe(1);
  });

  it('starts closed and reopens by itself after outageForMs', async () => {
    const server = await start({ outage: 'refused', outageForMs: 300 });
    expect(await outcome(chat(server, request('oi')))).toBe('ECONNREFUSED');
    const stats = await statsOverHttpOnceUp(server);
    expect(stats).toMatchObject({ outage: null, totalRequests: 0 });
    expect((stats?.outageEndedAt as number) - (stats?.outageStartedAt as number)).toBeGreaterThanOrEqual(295);
    expect(server.behaviour()).not.toHaveProperty('outage');
    expect(await outcome(chat(server, request('oi')))).toBe(200);
  });

  it('drops calls in flight and kept-alive connections, unbilled, as a server going down', async () => {
    const server = await start();
    // A first answered call leaves a kept-alive connection in the client's pool.
    expect(await outcome(chat(server, request('oi')))).toBe(200);
    server.configure({ hangRate: 1 });
    const hanging = outcome(chat(server, request('pendurado')));
    await waitFor(
      async () => server.stats().currentConcurrency,
      (n) => n === 1,
      {
        timeoutMs: 5_000,
        intervalMs: 5,
        what: 'the hanging call to arrive',
      },
    );

    server.configure({ outage: 'refused' });
    expect(CONNECTION_FAILURES).toContain(await hanging);
    expect(CONNECTION_FAILURES).toContain(await outcome(chat(server, request('oi'))));
    expect(server.stats()).toMatchObject({ totalRequests: 2, currentConcurrency: 0 });
    expect(server.stats().billed.calls).toBe(1);

    server.configure({ outage: null, hangRate: null });
    await server.outageEnded();
    expect(await outcome(chat(server, request('oi')))).toBe(200);
  });

  it('ends with reset() and turns straight into "unavailable" without an end in between', async () => {
    const server = await start({ outage: 'refused' });
    server.configure({ outage: 'unavailable' });
    const stats = await statsOverHttpOnceUp(server);
    expect(stats).toMatchObject({ outage: 'unavailable', outageEndedAt: null });
    expect(await outcome(chat(server, request('oi')))).toBe(503);

    server.configure({ outage: 'refused' });
    expect(CONNECTION_FAILURES).toContain(await outcome(chat(server, request('oi'))));
    server.reset();
    await server.outageEnded();
    expect(server.stats()).toMatchObject({ outage: null, outageCalls: 0 });
    expect(await outcome(chat(server, request('oi')))).toBe(200);
  });

  it('settles quick flips on the last one and stays shut when closed while reopening', async () => {
    const server = await start();
    server.configure({ outage: 'refused' });
    server.configure({ outage: null });
    server.configure({ outage: 'refused' });
    expect(CONNECTION_FAILURES).toContain(await outcome(chat(server, request('oi'))));
    server.configure({ outage: null });
    await server.outageEnded();
    expect(await outcome(chat(server, request('oi')))).toBe(200);

    server.configure({ outage: 'refused' });
    const waiting = server.outageEnded();
    server.configure({ outage: null });
    // close() while the port is being reopened: the reopening must not outlive it.
    await server.close();
    await waiting.catch(() => undefined);
    expect(CONNECTION_FAILURES).toContain(await outcome(chat(server, request('oi'))));
    expect(await outcome(fetch(`${server.url}/_stats`))).toBe('ECONNREFUSED');
  });

  it('rejects outageEnded() when the server closes first, and close() resolves during an outage', async () => {
    const server = await start({ outage: 'refused' });
    const waiting = server.outageEnded();
    await server.close();
    await expect(waiting).rejects.toThrow(/closed/);
    await expect(server.outageEnded()).rejects.toThrow(/closed/);
  });
});

describe('fake Maritaca key revoked after N calls', () => {
  it('serves N calls, then refuses the key with 401 unbilled until restored with null', async () => {
    const server = await start({ revokeKeyAfterCalls: 2 });
    expect((await chat(server, request('um'))).status).toBe(200);
    // Every call carrying the key counts, whatever it is answered.
    expect((await chat(server, { model: 'sabia-4' })).status).toBe(422);
    for (let i = 0; i < 2; i++) {
      const refused = await chat(server, request('tres'));
      expect(refused.status).toBe(401);
      expect(await readJson(refused)).toEqual({ detail: 'Invalid or revoked API key' });
    }
    // A wrong key is still refused as such, and does not count as a call with the key.
    const wrong = await chat(server, request('oi'), { key: 'other' });
    expect(await readJson(wrong)).toEqual({ detail: 'Invalid API key' });
    expect(server.stats()).toMatchObject({ revokedCalls: 2, byStatus: { '200': 1, '422': 1, '401': 3 } });
    expect(server.stats().billed.calls).toBe(1);

    server.configure({ revokeKeyAfterCalls: null });
    expect((await chat(server, request('de volta'))).status).toBe(200);
  });

  it.each([
    [402, 'Saldo insuficiente'],
    [403, 'Forbidden'],
  ] as const)('refuses with %i and its message when revokedStatus says so', async (status, words) => {
    const server = await start();
    expect((await config(server, { revokeKeyAfterCalls: 1, revokedStatus: status })).status).toBe(200);
    expect((await chat(server, request('oi'))).status).toBe(200);
    const refused = await chat(server, request('oi'));
    expect(refused.status).toBe(status);
    const body = await readJson(refused);
    expect(Object.keys(body)).toEqual(['detail']);
    expect(body.detail).toContain(words);
  });

  it('revokes at once with 0, and counts afresh when set again or after reset()', async () => {
    const server = await start({ revokeKeyAfterCalls: 0 });
    expect((await chat(server, request('oi'))).status).toBe(401);
    server.configure({ revokeKeyAfterCalls: 1 });
    expect((await chat(server, request('oi'))).status).toBe(200);
    expect((await chat(server, request('oi'))).status).toBe(401);
    server.reset();
    expect(server.stats().revokedCalls).toBe(0);
    expect((await chat(server, request('oi'))).status).toBe(200);
    expect((await chat(server, request('oi'))).status).toBe(401);
    // Changing only the status keeps the count: the key stays refused, now with 402.
    server.configure({ revokedStatus: 402 });
    expect((await chat(server, request('oi'))).status).toBe(402);
  });
});

describe('fake Maritaca echoKeyInErrors', () => {
  const SECRET = 'sk-echo-me-please-42';

  it('repeats the bearer token in every error body, and only there', async () => {
    const server = await start({ apiKey: SECRET, echoKeyInErrors: true, revokeKeyAfterCalls: 1000 });
    const withKey = (body: unknown, path = ''): Promise<Response> =>
      chat(server, body, { key: SECRET, path });
    const bodies: Record<string, Response> = {};
    bodies['401 wrong key'] = await chat(server, request('oi'), { key: 'sk-wrong-but-secret' });
    bodies['404'] = await fetch(`${server.url}/nowhere`, { headers: { authorization: `Bearer ${SECRET}` } });
    bodies['422 issues'] = await withKey({ model: 'sabia-4' });
    bodies['422 JSON'] = await withKey('{not json');
    bodies['400 model'] = await withKey(request('oi', { model: 'gpt-9' }));
    bodies['418 forced'] = await withKey(request('[[fake-status:418]]'));
    bodies['500 forced'] = await withKey(request('[[fake-status:500]]'));
    server.configure({ errorRate429: 1 });
    bodies['429'] = await withKey(request('oi'));
    server.configure({ errorRate429: null, errorRate500: 1 });
    bodies['500'] = await withKey(request('oi'));
    server.configure({ errorRate500: null, outage: 'unavailable' });
    bodies['503'] = await withKey(request('oi'));
    bodies['503 models'] = await fetch(`${server.url}/models`, {
      headers: { authorization: `Bearer ${SECRET}` },
    });
    server.configure({ outage: null });
    for (const status of [401, 402, 403] as const) {
      server.configure({ revokeKeyAfterCalls: 0, revokedStatus: status });
      bodies[`${status} revoked`] = await withKey(request('oi'));
    }

    for (const [what, response] of Object.entries(bodies)) {
      expect([what, response.status >= 400]).toEqual([what, true]);
      const text = await response.text();
      const body = JSON.parse(text);
      const sent = what === '401 wrong key' ? 'sk-wrong-but-secret' : SECRET;
      // In the message a client would log, and as the header itself.
      expect([what, body.request_headers]).toEqual([what, { authorization: `Bearer ${sent}` }]);
      const message: string = JSON.stringify(body.detail ?? body.error.message);
      expect([what, message.includes(sent)]).toEqual([what, true]);
    }

    server.configure({ revokeKeyAfterCalls: null });
    const answered = await withKey(request('oi'));
    expect(answered.status).toBe(200);
    expect(await answered.text()).not.toContain(SECRET);
    // A call without a key has nothing to echo.
    const missing = await chat(server, request('oi'), { key: null });
    expect(await readJson(missing)).toEqual({ detail: 'Invalid API key' });
  });

  it('echoes nothing unless asked, and is switched through POST /_config', async () => {
    const server = await start({ apiKey: SECRET, outage: 'unavailable' });
    const quiet = await chat(server, request('oi'), { key: SECRET });
    expect(await quiet.text()).not.toContain(SECRET);
    expect((await config(server, { echoKeyInErrors: true })).status).toBe(200);
    expect(await (await chat(server, request('oi'), { key: SECRET })).text()).toContain(SECRET);
    expect((await config(server, { echoKeyInErrors: null })).status).toBe(200);
    expect(await (await chat(server, request('oi'), { key: SECRET })).text()).not.toContain(SECRET);
  });
});

describe('fake Maritaca outage and revocation settings', () => {
  it.each([
    [{ outage: 'down' }, 'outage'],
    [{ outage: 'refused', outageForMs: 0 }, 'outageForMs'],
    [{ outage: 'unavailable', outageForMs: -5 }, 'outageForMs'],
    [{ outageForMs: 100 }, 'outageForMs'],
    [{ outage: null, outageForMs: 100 }, 'outageForMs'],
    [{ revokeKeyAfterCalls: -1 }, 'revokeKeyAfterCalls'],
    [{ revokeKeyAfterCalls: 1.5 }, 'revokeKeyAfterCalls'],
    [{ revokedStatus: 404 }, 'revokedStatus'],
    [{ revokedStatus: '402' }, 'revokedStatus'],
    [{ echoKeyInErrors: 'yes' }, 'echoKeyInErrors'],
  ])('refuses %j with a RangeError naming %s, in process and over HTTP', async (update, field) => {
    const server = await start();
    const before = server.behaviour();
    expect(() => server.configure(update as never)).toThrow(RangeError);
    expect(() => server.configure(update as never)).toThrow(field);
    const answer = await config(server, update);
    expect(answer.status).toBe(400);
    expect((await readJson(answer)).error.message).toContain(field);
    expect(server.behaviour()).toEqual(before);
    expect(server.stats().outage).toBeNull();
  });

  it('refuses bad settings at start', async () => {
    await expect(startFakeMaritaca({ outageForMs: 100 })).rejects.toThrow(/outageForMs/);
    await expect(startFakeMaritaca({ revokedStatus: 500 as never })).rejects.toThrow(/revokedStatus/);
  });
});

describe('fake-server command outage and revocation flags', () => {
  function parse(args: string[]): Promise<unknown> {
    const program = new Command().exitOverride().configureOutput({ writeErr: () => undefined });
    registerFakeServerCommand(program);
    return program.parseAsync(['node', 'maritaca-batch', 'fake-server', ...args]);
  }

  it('reads the flags into the command options', () => {
    const command = registerFakeServerCommand(new Command());
    // Parsing the options alone runs their checks without starting a server.
    command.parseOptions([
      '--outage',
      'unavailable',
      '--outage-for',
      '1500',
      '--revoke-key-after',
      '3',
      '--revoked-status',
      '402',
      '--echo-key-in-errors',
    ]);
    expect(command.opts()).toMatchObject({
      outage: 'unavailable',
      outageFor: 1500,
      revokeKeyAfter: 3,
      revokedStatus: 402,
      echoKeyInErrors: true,
    });
  });

  it.each([
    [['--outage', 'down'], '--outage'],
    [['--outage-for', '0', '--outage', 'unavailable'], '--outage-for'],
    [['--outage-for', '100'], '--outage'],
    [['--outage', 'refused'], '--outage-for'],
    [['--revoke-key-after', '-1'], '--revoke-key-after'],
    [['--revoke-key-after', '1.5'], '--revoke-key-after'],
    [['--revoked-status', '404'], '--revoked-status'],
  ])('refuses %j with exit code 2 naming the flag', async (args, flag) => {
    const error = await parse(args).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommanderError);
    expect((error as CommanderError).exitCode).toBe(2);
    expect((error as CommanderError).message).toContain(flag);
  });
});
