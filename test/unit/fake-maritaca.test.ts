import { Command, CommanderError } from 'commander';
import OpenAI from 'openai';
import { registerFakeServerCommand } from '../../src/cli/fake-server-command';
import {
  countFakeTokens,
  fakePromptTokens,
  startFakeMaritaca,
  type FakeMaritacaOptions,
  type FakeMaritacaServer,
} from '../../src/testing/fake-maritaca';

const API_KEY = 'test-key';
const running: FakeMaritacaServer[] = [];

async function start(options: FakeMaritacaOptions = {}): Promise<FakeMaritacaServer> {
  const server = await startFakeMaritaca({ apiKey: API_KEY, ...options });
  running.push(server);
  return server;
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.close()));
});

interface ChatCallOptions {
  key?: string | null;
  requestId?: string;
  signal?: AbortSignal;
  path?: string;
}

function chat(server: FakeMaritacaServer, body: unknown, options: ChatCallOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const key = options.key === undefined ? API_KEY : options.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  if (options.requestId) headers['x-request-id'] = options.requestId;
  return fetch(`${server.url}${options.path ?? ''}/chat/completions`, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: options.signal,
  });
}

/** Bodies are checked field by field against what the fake promises, so a loose type is enough. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function readJson(response: Response): Promise<any> {
  return response.json();
}

function request(content: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: 'sabia-4', messages: [{ role: 'user', content }], ...extra };
}

/** Polls a condition the server reaches asynchronously (a client's disconnect) instead of sleeping. */
async function until(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('fake Maritaca server', () => {
  it('answers with the last user message and consistent usage, at the root and under /api and /v1', async () => {
    const server = await start();
    const messages = [
      { role: 'system', content: 'Você é um assistente.' },
      { role: 'user', content: 'primeira pergunta' },
      { role: 'assistant', content: 'ok' },
      { role: 'user', content: 'Qual é a capital do Brasil?' },
    ];
    for (const path of ['', '/api', '/v1']) {
      const response = await chat(server, { model: 'sabiazinho-4', messages, max_tokens: 100 }, { path });
      expect(response.status).toBe(200);
      const completion = await readJson(response);
      const content: string = completion.choices[0].message.content;
      expect(content).toContain('Qual é a capital do Brasil?');
      expect(completion).toMatchObject({
        object: 'chat.completion',
        model: 'sabiazinho-4',
        choices: [{ index: 0, message: { role: 'assistant' }, finish_reason: 'stop' }],
        usage: {
          prompt_tokens: fakePromptTokens(messages),
          completion_tokens: countFakeTokens(content),
          total_tokens: fakePromptTokens(messages) + countFakeTokens(content),
          prompt_tokens_details: { cached_tokens: 0 },
        },
      });
      expect(typeof completion.id).toBe('string');
      expect(typeof completion.created).toBe('number');
    }
  });

  it('lists the known models', async () => {
    const server = await start();
    const response = await fetch(`${server.url}/api/models`, {
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    const list = await readJson(response);
    expect(list.object).toBe('list');
    expect(list.data).toContainEqual(
      expect.objectContaining({ id: 'sabia-4', object: 'model', owned_by: 'maritaca' }),
    );
  });

  it('refuses a missing or wrong key with 401 without echoing the key', async () => {
    const server = await start();
    const missing = await chat(server, request('oi'), { key: null });
    expect(missing.status).toBe(401);
    expect(await readJson(missing)).toEqual({ detail: 'Invalid API key' });

    const wrong = await chat(server, request('oi'), { key: 'sk-super-secret-wrong' });
    expect(wrong.status).toBe(401);
    const text = await wrong.text();
    expect(text).not.toContain('sk-super-secret-wrong');
    expect(JSON.parse(text)).toEqual({ detail: 'Invalid API key' });
  });

  it('answers 422 FastAPI-style for missing messages, missing model and invalid JSON', async () => {
    const server = await start();
    const noMessages = await chat(server, { model: 'sabia-4' });
    expect(noMessages.status).toBe(422);
    expect(await readJson(noMessages)).toEqual({
      detail: [{ loc: ['body', 'messages'], msg: 'Field required', type: 'missing' }],
    });

    const noModel = await chat(server, { messages: [{ role: 'user', content: 'oi' }] });
    expect(noModel.status).toBe(422);
    expect((await readJson(noModel)).detail).toEqual([
      { loc: ['body', 'model'], msg: 'Field required', type: 'missing' },
    ]);

    const badJson = await chat(server, '{"model": "sabia-4", ');
    expect(badJson.status).toBe(422);
    expect((await readJson(badJson)).detail[0].type).toBe('json_invalid');

    const notAList = await chat(server, { model: 'sabia-4', messages: 'oi' });
    expect(notAList.status).toBe(422);
    expect((await readJson(notAList)).detail[0].loc).toEqual(['body', 'messages']);
  });

  it('answers 400 for an unknown model and for streaming', async () => {
    const server = await start();
    const unknown = await chat(server, { ...request('oi'), model: 'gpt-9' });
    expect(unknown.status).toBe(400);
    const body = await readJson(unknown);
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.message).toMatch(/^Model 'gpt-9' not found/);

    const stream = await chat(server, request('oi', { stream: true }));
    expect(stream.status).toBe(400);
    expect((await readJson(stream)).error.message).toBe('stream is not supported by the fake server');
  });

  it("replies exactly max_tokens tokens with finish_reason 'length' when replyTokens is 'max'", async () => {
    const server = await start({ replyTokens: 'max' });
    for (const maxTokens of [1, 3, 57, 1000]) {
      const completion = await readJson(
        await chat(server, request('uma pergunta longa o bastante', { max_tokens: maxTokens })),
      );
      expect(completion.usage.completion_tokens).toBe(maxTokens);
      expect(countFakeTokens(completion.choices[0].message.content)).toBe(maxTokens);
      expect(completion.choices[0].finish_reason).toBe('length');
    }
  });

  it('caps a numeric replyTokens at max_tokens and never exceeds max_tokens by default', async () => {
    const server = await start({ replyTokens: 40 });
    const short = await readJson(await chat(server, request('oi', { max_tokens: 100 })));
    expect(short.usage.completion_tokens).toBe(40);
    expect(short.choices[0].message.content).toContain('oi');
    expect(short.choices[0].finish_reason).toBe('stop');
    const capped = await readJson(await chat(server, request('oi', { max_tokens: 10 })));
    expect(capped.usage.completion_tokens).toBe(10);

    server.configure({ replyTokens: null });
    const truncated = await readJson(await chat(server, request('x'.repeat(400), { max_tokens: 5 })));
    expect(truncated.usage.completion_tokens).toBe(5);
    expect(truncated.choices[0].finish_reason).toBe('length');
  });

  it('reports cached prompt tokens at cachedTokensRate', async () => {
    const server = await start({ cachedTokensRate: 0.5 });
    const completion = await readJson(await chat(server, request('a'.repeat(40))));
    expect(completion.usage.prompt_tokens).toBe(14);
    expect(completion.usage.prompt_tokens_details.cached_tokens).toBe(7);
  });

  it('injects 500s and 429s with Retry-After', async () => {
    const failing = await start({ errorRate500: 1 });
    const error = await chat(failing, request('oi'));
    expect(error.status).toBe(500);
    expect((await readJson(error)).error.type).toBe('server_error');

    const limited = await start({ errorRate429: 1, retryAfterSeconds: 7 });
    const tooMany = await chat(limited, request('oi'));
    expect(tooMany.status).toBe(429);
    expect(tooMany.headers.get('retry-after')).toBe('7');
    expect((await readJson(tooMany)).error.type).toBe('rate_limit_error');

    limited.configure({ retryAfterSeconds: null });
    expect((await chat(limited, request('oi'))).headers.get('retry-after')).toBe('1');
  });

  it('enforces rpm over a sliding minute with Retry-After until a slot frees', async () => {
    const server = await start({ rpm: 3 });
    for (let i = 0; i < 3; i++) expect((await chat(server, request('oi'))).status).toBe(200);
    const fourth = await chat(server, request('oi'));
    expect(fourth.status).toBe(429);
    const retryAfter = Number(fourth.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(55);
    expect(retryAfter).toBeLessThanOrEqual(60);

    server.reset();
    expect((await chat(server, request('oi'))).status).toBe(200);
  });

  it('leaves hanging requests to the client timeout and drops them on close()', async () => {
    const server = await start({ hangRate: 1 });
    await expect(chat(server, request('oi'), { signal: AbortSignal.timeout(100) })).rejects.toThrow();
    await until(() => server.stats().currentConcurrency === 0);
    expect(server.stats().byStatus).toEqual({});

    const pending = chat(server, request('oi'));
    pending.catch(() => undefined);
    await until(() => server.stats().currentConcurrency === 1);
    const started = Date.now();
    await server.close();
    expect(Date.now() - started).toBeLessThan(1000);
    await expect(pending).rejects.toThrow();
  });

  it('counts requests by X-Request-Id, status and peak concurrency, and resets', async () => {
    const server = await start({ latencyMs: 150 });
    const parallel = 8;
    const responses = await Promise.all(
      Array.from({ length: parallel }, (_, i) => chat(server, request('oi'), { requestId: `req-${i % 2}` })),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(parallel).fill(200));
    await chat(server, request('oi'), { key: 'wrong' });
    await chat(server, request('oi'));

    const stats = await readJson(await fetch(`${server.url}/_stats`));
    expect(stats).toEqual({
      totalRequests: parallel + 2,
      byRequestId: { 'req-0': parallel / 2, 'req-1': parallel / 2, '(none)': 2 },
      currentConcurrency: 0,
      peakConcurrency: parallel,
      byStatus: { '200': parallel + 1, '401': 1 },
    });
    expect(server.stats()).toEqual(stats);

    const reset = await fetch(`${server.url}/_reset`, { method: 'POST' });
    expect(reset.status).toBe(200);
    expect(server.stats()).toEqual({
      totalRequests: 0,
      byRequestId: {},
      currentConcurrency: 0,
      peakConcurrency: 0,
      byStatus: {},
    });
  });

  it('changes behaviour at runtime through POST /_config and refuses bad or fixed settings', async () => {
    const server = await start();
    expect((await chat(server, request('oi'))).status).toBe(200);

    const config = (body: unknown): Promise<Response> =>
      fetch(`${server.url}/_config`, { method: 'POST', body: JSON.stringify(body) });
    expect((await config({ errorRate500: 1 })).status).toBe(200);
    expect((await chat(server, request('oi'))).status).toBe(500);
    expect((await config({ errorRate500: 0, replyTokens: 'max' })).status).toBe(200);
    expect(
      (await readJson(await chat(server, request('oi', { max_tokens: 33 })))).usage.completion_tokens,
    ).toBe(33);

    const badRate = await config({ hangRate: 2 });
    expect(badRate.status).toBe(400);
    expect((await readJson(badRate)).error.message).toMatch(/hangRate/);
    expect((await config({ port: 1 })).status).toBe(400);
    expect((await config({ apiKey: 'other' })).status).toBe(400);
    expect((await config({ latencyMedianMs: 10 })).status).toBe(400);
    expect(() => server.configure({ latencyMedianMs: 10, latencyP99Ms: 5 })).toThrow(RangeError);

    // Refused updates change nothing.
    expect((await readJson(await fetch(`${server.url}/_config`))).replyTokens).toBe('max');
    expect((await chat(server, request('oi'))).status).toBe(200);
  });

  it('makes the same sequence of decisions for the same seed', async () => {
    const statuses = async (seed: number): Promise<number[]> => {
      const server = await start({ seed, errorRate500: 0.5 });
      const seen: number[] = [];
      for (let i = 0; i < 24; i++) seen.push((await chat(server, request('oi'))).status);
      return seen;
    };
    const first = await statuses(42);
    expect(await statuses(42)).toEqual(first);
    expect(first).toContain(200);
    expect(first).toContain(500);
    expect(await statuses(7)).not.toEqual(first);
  });

  it('samples a log-normal latency without breaking answers', async () => {
    const server = await start({ latencyMedianMs: 2, latencyP99Ms: 10, seed: 1 });
    const responses = await Promise.all(Array.from({ length: 20 }, () => chat(server, request('oi'))));
    expect(responses.every((r) => r.status === 200)).toBe(true);
  });

  it('works with the openai SDK', async () => {
    const server = await start({ replyTokens: 12 });
    const client = new OpenAI({ apiKey: API_KEY, baseURL: server.url, maxRetries: 0 });
    const completion = await client.chat.completions.create({
      model: 'sabia-4',
      messages: [{ role: 'user', content: 'Olá, SDK' }],
      max_tokens: 50,
    });
    expect(completion.choices[0]?.message.content).toContain('Olá, SDK');
    expect(completion.usage?.completion_tokens).toBe(12);
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toContain('sabia-4');

    server.configure({ errorRate429: 1 });
    await expect(
      client.chat.completions.create({ model: 'sabia-4', messages: [{ role: 'user', content: 'oi' }] }),
    ).rejects.toMatchObject({ status: 429 });
    const badKey = new OpenAI({ apiKey: 'nope', baseURL: `${server.url}/api`, maxRetries: 0 });
    await expect(badKey.models.list()).rejects.toMatchObject({ status: 401 });
  });
});

describe('fake-server command', () => {
  function parse(args: string[]): Promise<unknown> {
    const program = new Command().exitOverride().configureOutput({ writeErr: () => undefined });
    registerFakeServerCommand(program);
    // Subcommands inherit exitOverride only when created after it is set, which is the case here.
    return program.parseAsync(['node', 'maritaca-batch', 'fake-server', ...args]);
  }

  it.each([
    [['--rpm', 'abc'], '--rpm'],
    [['--rpm', '0'], '--rpm'],
    [['--error-rate-500', '1.5'], '--error-rate-500'],
    [['--port', '70000'], '--port'],
    [['--reply-tokens', 'lots'], '--reply-tokens'],
    [['--latency-ms', '5', '--latency-median-ms', '5', '--latency-p99-ms', '9'], '--latency-ms'],
    [['--latency-median-ms', '5'], '--latency-p99-ms'],
  ])('refuses %j with exit code 2 naming the flag', async (args, flag) => {
    const error = await parse(args).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommanderError);
    expect((error as CommanderError).exitCode).toBe(2);
    expect((error as CommanderError).message).toContain(flag);
  });
});
