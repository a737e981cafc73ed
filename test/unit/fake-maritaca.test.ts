import { Command, CommanderError } from 'commander';
import OpenAI from 'openai';
import { parseTemplateOverhead, registerFakeServerCommand } from '../../src/cli/fake-server-command';
import { priceOf } from '../../src/shared/prices';
import {
  DEFAULT_FAKE_TEMPLATE_OVERHEAD,
  fakeCompletionTokens,
  fakePromptTokens,
  fakeTextOfTokens,
  startFakeMaritaca,
  type FakeMaritacaServer,
  type FakeMaritacaStats,
} from '../../src/testing/fake-maritaca';
import { countTokens } from '../../src/tokenizer/maritaca-tokenizer';
import { waitFor } from '../helpers/wait';
import { fakeServersFor } from '../helpers/fake-servers';

const API_KEY = 'test-key';
const start = fakeServersFor(API_KEY);

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

/** Exact count with Maritaca's tokenizer, independent of the fake's own helpers. */
function tokens(text: string, model: string): number {
  const count = countTokens(text, model);
  if (count === undefined) throw new Error(`no tokenizer for ${model}`);
  return count;
}

/** Polls the server's counters until `done` holds for them, instead of sleeping. */
function statsUntil(
  server: FakeMaritacaServer,
  done: (stats: FakeMaritacaStats) => boolean,
  what: string,
): Promise<FakeMaritacaStats> {
  return waitFor(async () => server.stats(), done, { timeoutMs: 10_000, intervalMs: 5, what });
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
          prompt_tokens: fakePromptTokens(messages, 'sabiazinho-4'),
          completion_tokens: fakeCompletionTokens(content, 'sabiazinho-4'),
          total_tokens:
            fakePromptTokens(messages, 'sabiazinho-4') + fakeCompletionTokens(content, 'sabiazinho-4'),
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
    for (const model of ['sabia-4', 'sabia-3']) {
      for (const maxTokens of [1, 2, 3, 8, 57, 1000]) {
        const completion = await readJson(
          await chat(server, request('uma pergunta longa o bastante', { model, max_tokens: maxTokens })),
        );
        expect(completion.usage.completion_tokens).toBe(maxTokens);
        expect(tokens(completion.choices[0].message.content, model)).toBe(maxTokens);
        expect(completion.choices[0].finish_reason).toBe('length');
      }
    }
  });

  it('replies exactly N tokens, capped at max_tokens, when replyTokens is a number', async () => {
    const server = await start();
    for (const model of ['sabia-4', 'sabia-3']) {
      for (const n of [1, 2, 5, 6, 13, 64, 501]) {
        server.configure({ replyTokens: n });
        const completion = await readJson(
          await chat(server, request('Qual é a capital do Brasil?', { model, max_tokens: 100 })),
        );
        const content: string = completion.choices[0].message.content;
        expect(tokens(content, model)).toBe(Math.min(n, 100));
        expect(completion.usage.completion_tokens).toBe(Math.min(n, 100));
        expect(completion.choices[0].finish_reason).toBe(n >= 100 ? 'length' : 'stop');
      }
    }
  });

  it('builds texts of an exact token count from any start', () => {
    const bases = [
      'Resposta para: oi',
      'Resposta para: Qual é a capital do Brasil?',
      'Resposta para: termina com espaços   ',
      'Resposta para: emoji 🦜🦜 e acentuação: ção, ã, ü',
      'Resposta para: 12345678901234567890',
      'Resposta para: ' + 'texto longo '.repeat(200),
      '',
    ];
    for (const model of ['sabia-4', 'sabia-3']) {
      for (const base of bases) {
        for (const n of [1, 2, 3, 4, 7, 10, 33, 250]) {
          const text = fakeTextOfTokens(base, n, model);
          expect({ base, n, count: tokens(text, model) }).toEqual({ base, n, count: n });
          // It keeps as much of the start as fits.
          if (tokens(base, model) <= n) expect(text.startsWith(base)).toBe(true);
        }
      }
    }
    expect(() => fakeTextOfTokens('x', 0, 'sabia-4')).toThrow(RangeError);
    expect(() => fakeTextOfTokens('x', 3, 'gpt-9')).toThrow(RangeError);
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
    const prompt = tokens('a'.repeat(40), 'sabia-4') + 3 + 5;
    expect(completion.usage.prompt_tokens).toBe(prompt);
    expect(completion.usage.prompt_tokens_details.cached_tokens).toBe(Math.floor(prompt / 2));
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
      outage: null,
      outageCalls: 0,
      outageStartedAt: null,
      outageEndedAt: null,
      revokedCalls: 0,
      byStatus: { '200': parallel + 1, '401': 1 },
      billed: {
        calls: parallel + 1,
        promptTokens: expect.any(Number),
        completionTokens: expect.any(Number),
        costBRL: expect.any(Number),
      },
      billedByRequestId: {
        'req-0': expect.any(Number),
        'req-1': expect.any(Number),
        '(none)': expect.any(Number),
      },
    });
    expect(server.stats()).toEqual(stats);

    const reset = await fetch(`${server.url}/_reset`, { method: 'POST' });
    expect(reset.status).toBe(200);
    expect(server.stats()).toEqual({
      totalRequests: 0,
      byRequestId: {},
      currentConcurrency: 0,
      peakConcurrency: 0,
      outage: null,
      outageCalls: 0,
      outageStartedAt: null,
      outageEndedAt: null,
      revokedCalls: 0,
      byStatus: {},
      billed: { calls: 0, promptTokens: 0, completionTokens: 0, costBRL: 0 },
      billedByRequestId: {},
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

describe('fake Maritaca token counts', () => {
  const conversation = [
    { role: 'system', content: 'Você é um assistente prestativo e conciso.' },
    { role: 'user', content: 'Quantas calorias tem uma banana média? Responda em português.' },
    { role: 'assistant', content: 'Cerca de 105 kcal.' },
    { role: 'user', content: 'E uma maçã? 🍎' },
  ];
  const contentTokens = (model: string): number =>
    conversation.reduce((sum, message) => sum + tokens(message.content, model), 0);

  async function usageOf(server: FakeMaritacaServer, model: string) {
    const completion = await readJson(await chat(server, { model, messages: conversation, max_tokens: 200 }));
    return { usage: completion.usage, content: completion.choices[0].message.content as string };
  }

  it.each(['sabia-4', 'sabia-3', 'sabiazinho-4-br-sp'])(
    'counts %s prompts exactly with the default overhead of 3 + 5 per message',
    async (model) => {
      const server = await start();
      expect(DEFAULT_FAKE_TEMPLATE_OVERHEAD).toEqual({ perRequest: 3, perMessage: 5 });
      const { usage, content } = await usageOf(server, model);
      expect(usage.prompt_tokens).toBe(contentTokens(model) + 3 + 5 * conversation.length);
      expect(usage.prompt_tokens).toBe(fakePromptTokens(conversation, model));
      // The default reply stays short and natural, and is counted exactly.
      expect(content).toBe('Resposta para: E uma maçã? 🍎');
      expect(usage.completion_tokens).toBe(tokens(content, model));
      expect(usage.total_tokens).toBe(usage.prompt_tokens + usage.completion_tokens);
    },
  );

  it('counts the configured overhead, for every model or per model', async () => {
    const server = await start({ templateOverhead: { perRequest: 7, perMessage: 1 } });
    for (const model of ['sabia-4', 'sabia-3']) {
      expect((await usageOf(server, model)).usage.prompt_tokens).toBe(
        contentTokens(model) + 7 + 1 * conversation.length,
      );
    }

    const perModel = { 'sabia-3': { perRequest: 0, perMessage: 2 } };
    server.configure({ templateOverhead: perModel });
    expect((await usageOf(server, 'sabia-3')).usage.prompt_tokens).toBe(
      contentTokens('sabia-3') + 2 * conversation.length,
    );
    expect(fakePromptTokens(conversation, 'sabia-3', perModel)).toBe(
      contentTokens('sabia-3') + 2 * conversation.length,
    );
    // Models left out keep the default.
    expect((await usageOf(server, 'sabia-4')).usage.prompt_tokens).toBe(
      contentTokens('sabia-4') + 3 + 5 * conversation.length,
    );

    const config = await fetch(`${server.url}/_config`, {
      method: 'POST',
      body: JSON.stringify({ templateOverhead: { 'sabia-4': { perRequest: 1, perMessage: 1 } } }),
    });
    expect(config.status).toBe(200);
    expect((await readJson(config)).templateOverhead).toEqual({
      'sabia-4': { perRequest: 1, perMessage: 1 },
    });
    expect((await usageOf(server, 'sabia-4')).usage.prompt_tokens).toBe(
      contentTokens('sabia-4') + 1 + conversation.length,
    );
    expect((await usageOf(server, 'sabia-3')).usage.prompt_tokens).toBe(
      contentTokens('sabia-3') + 3 + 5 * conversation.length,
    );

    server.configure({ templateOverhead: null });
    expect((await usageOf(server, 'sabia-4')).usage.prompt_tokens).toBe(
      fakePromptTokens(conversation, 'sabia-4'),
    );
  });

  it.each([
    [{ perRequest: -1, perMessage: 5 }],
    [{ perRequest: 3 }],
    [{ perRequest: 3, perMessage: 1.5 }],
    [{ perRequest: 3, perMessage: 5, extra: 1 }],
    [{ 'gpt-9': { perRequest: 3, perMessage: 5 } }],
    [{ 'sabia-4': { perRequest: 3 } }],
    ['3+5'],
    [[3, 5]],
  ])('refuses templateOverhead %j with a RangeError naming it, changing nothing', async (bad) => {
    const server = await start({ templateOverhead: { perRequest: 1, perMessage: 1 } });
    expect(() => server.configure({ templateOverhead: bad as never })).toThrow(
      expect.objectContaining({ name: 'RangeError', message: expect.stringMatching(/^templateOverhead /) }),
    );
    expect(server.behaviour().templateOverhead).toEqual({ perRequest: 1, perMessage: 1 });
    await expect(startFakeMaritaca({ templateOverhead: bad as never })).rejects.toThrow(/templateOverhead/);
  });
});

describe('fake Maritaca billing', () => {
  const costOf = (
    usage: {
      prompt_tokens: number;
      completion_tokens: number;
      prompt_tokens_details: { cached_tokens: number };
    },
    model: string,
  ) =>
    priceOf(model, {
      promptTokens: usage.prompt_tokens,
      completionTokens: usage.completion_tokens,
      cachedPromptTokens: usage.prompt_tokens_details.cached_tokens,
    });

  it('bills what the answered calls report, cached tokens at the cached price, per request id', async () => {
    const server = await start({ cachedTokensRate: 0.5, replyTokens: 37 });
    const calls = [
      { model: 'sabia-4', content: 'Explique fotossíntese.', id: 'a' },
      { model: 'sabiazinho-4', content: 'Quanto é 2 + 2?', id: 'b' },
      { model: 'sabia-3', content: 'Diga olá.', id: 'a' },
      { model: 'sabia-4-br-sp', content: 'Conte até três.', id: 'c' },
    ];
    let promptTokens = 0;
    let completionTokens = 0;
    let cost = 0;
    const costById: Record<string, number> = {};
    for (const call of calls) {
      const response = await chat(server, request(call.content, { model: call.model, max_tokens: 50 }), {
        requestId: call.id,
      });
      expect(response.status).toBe(200);
      const { usage } = await readJson(response);
      expect(usage.prompt_tokens_details.cached_tokens).toBeGreaterThan(0);
      promptTokens += usage.prompt_tokens;
      completionTokens += usage.completion_tokens;
      cost += costOf(usage, call.model);
      costById[call.id] = (costById[call.id] ?? 0) + costOf(usage, call.model);
    }
    // Refused and failed calls in between cost nothing.
    server.configure({ errorRate500: 1 });
    expect((await chat(server, request('falha'), { requestId: 'a' })).status).toBe(500);

    const stats = await readJson(await fetch(`${server.url}/_stats`));
    expect(stats.billed).toEqual({
      calls: calls.length,
      promptTokens,
      completionTokens,
      costBRL: expect.closeTo(cost, 12),
    });
    expect(Object.keys(stats.billedByRequestId).sort()).toEqual(['a', 'b', 'c']);
    for (const [id, expected] of Object.entries(costById)) {
      expect(stats.billedByRequestId[id]).toBeCloseTo(expected, 12);
    }
    expect(server.stats()).toEqual(stats);

    server.reset();
    expect(server.stats().billed).toEqual({ calls: 0, promptTokens: 0, completionTokens: 0, costBRL: 0 });
    expect(server.stats().billedByRequestId).toEqual({});
  });

  it('bills nothing for injected 429s and 500s, forced statuses, rate limits and refused requests', async () => {
    const server = await start({ errorRate500: 1 });
    expect((await chat(server, request('oi'))).status).toBe(500);
    server.configure({ errorRate500: null, errorRate429: 1 });
    expect((await chat(server, request('oi'))).status).toBe(429);
    server.configure({ errorRate429: null });
    expect((await chat(server, request('oi [[fake-status:503]]'))).status).toBe(503);
    expect((await chat(server, request('oi [[fake-status:429]]'))).status).toBe(429);
    expect((await chat(server, request('oi'), { key: 'wrong' })).status).toBe(401);
    expect((await chat(server, { model: 'sabia-4' })).status).toBe(422);
    expect((await chat(server, request('oi', { model: 'gpt-9' }))).status).toBe(400);
    server.configure({ rpm: 1 });
    expect((await chat(server, request('oi'))).status).toBe(200);
    expect((await chat(server, request('oi'))).status).toBe(429);

    const stats = server.stats();
    expect(stats.byStatus).toEqual({ '200': 1, '400': 1, '401': 1, '422': 1, '429': 3, '500': 1, '503': 1 });
    expect(stats.billed.calls).toBe(1);
  });

  it('keeps generating a call whose client aborted: it holds concurrency until its latency, then is billed', async () => {
    const latencyMs = 1500;
    const server = await start({ latencyMs });
    const messages = [{ role: 'user', content: 'Uma pergunta que o cliente abandona.' }];
    const controller = new AbortController();
    const sentAt = Date.now();
    const pending = chat(
      server,
      { model: 'sabia-4', messages, max_tokens: 80 },
      {
        requestId: 'gone',
        signal: controller.signal,
      },
    );
    await statsUntil(server, (s) => s.currentConcurrency === 1, 'the call to be admitted');
    controller.abort();
    await expect(pending).rejects.toThrow();

    // Until it is billed, the call is still being generated: it counts as in flight, no answer.
    const billed = await waitFor(
      async () => {
        const stats = server.stats();
        if (stats.billed.calls === 0) {
          expect(stats.currentConcurrency).toBe(1);
          expect(stats.byStatus).toEqual({});
        }
        return stats;
      },
      (stats) => stats.billed.calls === 1,
      { timeoutMs: 10_000, intervalMs: 5, what: 'the abandoned call to be billed' },
    );
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(latencyMs);
    expect(billed.currentConcurrency).toBe(0);
    expect(billed.byStatus).toEqual({});
    // Billed as if answered, with the reply it would have sent.
    const reply = 'Resposta para: Uma pergunta que o cliente abandona.';
    const usage = {
      promptTokens: fakePromptTokens(messages, 'sabia-4'),
      completionTokens: tokens(reply, 'sabia-4'),
    };
    expect(billed.billed).toEqual({
      calls: 1,
      ...usage,
      costBRL: expect.closeTo(priceOf('sabia-4', usage), 12),
    });
    expect(billed.billedByRequestId).toEqual({ gone: expect.closeTo(priceOf('sabia-4', usage), 12) });
  });

  it('bills a hung call its prompt plus max_tokens when the client gives up, and frees it then', async () => {
    const server = await start({ hangRate: 1, cachedTokensRate: 0.25 });
    const messages = [
      { role: 'system', content: 'Seja breve.' },
      { role: 'user', content: 'Esta chamada nunca terá resposta.' },
    ];
    const controller = new AbortController();
    const pending = chat(
      server,
      { model: 'sabiazinho-4', messages, max_tokens: 300 },
      {
        requestId: 'hung',
        signal: controller.signal,
      },
    );
    await statsUntil(server, (s) => s.currentConcurrency === 1, 'the call to hang');
    expect(server.stats().billed.calls).toBe(0);
    controller.abort();
    await expect(pending).rejects.toThrow();
    const stats = await statsUntil(server, (s) => s.currentConcurrency === 0, 'the server to see the abort');
    const promptTokens = fakePromptTokens(messages, 'sabiazinho-4');
    const worstCase = {
      promptTokens,
      completionTokens: 300,
      cachedPromptTokens: Math.floor(promptTokens * 0.25),
    };
    expect(stats.billed).toEqual({
      calls: 1,
      promptTokens,
      completionTokens: 300,
      costBRL: expect.closeTo(priceOf('sabiazinho-4', worstCase), 12),
    });
    expect(stats.billedByRequestId).toEqual({ hung: expect.closeTo(priceOf('sabiazinho-4', worstCase), 12) });
    expect(stats.byStatus).toEqual({});
  });

  it('does not bill calls the server itself drops on close()', async () => {
    const server = await start({ hangRate: 1 });
    const pending = chat(server, request('oi'));
    pending.catch(() => undefined);
    await statsUntil(server, (s) => s.currentConcurrency === 1, 'the call to hang');
    await server.close();
    await expect(pending).rejects.toThrow();
    expect(server.stats().billed.calls).toBe(0);
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
    [['--template-overhead', 'lots'], '--template-overhead'],
    [['--template-overhead', 'gpt-9=3+5'], '--template-overhead'],
    [['--invalid-structured-rate', '1.5'], '--invalid-structured-rate'],
    [['--image-tokens', '-1'], '--image-tokens'],
    [['--image-tokens', '2.5'], '--image-tokens'],
  ])('refuses %j with exit code 2 naming the flag', async (args, flag) => {
    const error = await parse(args).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommanderError);
    expect((error as CommanderError).exitCode).toBe(2);
    expect((error as CommanderError).message).toContain(flag);
  });
});

describe('fake-server command options', () => {
  it('reads --invalid-structured-rate and --image-tokens into the server options', () => {
    const command = registerFakeServerCommand(new Command());
    // Parsing the options alone runs their checks without starting a server.
    command.parseOptions(['--invalid-structured-rate', '0.2', '--image-tokens', '500']);
    expect(command.opts()).toMatchObject({ invalidStructuredRate: 0.2, imageTokens: 500 });
  });
});

describe('parseTemplateOverhead', () => {
  it('reads one overhead for every model', () => {
    expect(parseTemplateOverhead('3+5')).toEqual({ perRequest: 3, perMessage: 5 });
    expect(parseTemplateOverhead(' 0+12 ')).toEqual({ perRequest: 0, perMessage: 12 });
  });

  it('reads overheads per model', () => {
    expect(parseTemplateOverhead('sabia-4=3+5,sabiazinho-4=2+4')).toEqual({
      'sabia-4': { perRequest: 3, perMessage: 5 },
      'sabiazinho-4': { perRequest: 2, perMessage: 4 },
    });
    expect(parseTemplateOverhead('sabia-3 = 1+1')).toEqual({ 'sabia-3': { perRequest: 1, perMessage: 1 } });
  });

  it.each([
    '',
    '3',
    '3+',
    '+5',
    '3+-1',
    '3.5+5',
    '3+5+1',
    'a+b',
    'sabia-4=',
    'sabia-4=3',
    'sabia-4=3+5,',
    '=3+5',
    'sabia-4=3+5=1',
  ])('refuses %j with exit code 2', (value) => {
    expect(() => parseTemplateOverhead(value)).toThrow(
      expect.objectContaining({ code: 'commander.invalidArgument', exitCode: 2 }),
    );
  });

  it('refuses unknown models and a model given twice', () => {
    expect(() => parseTemplateOverhead('gpt-9=3+5')).toThrow(/unknown model "gpt-9"/);
    expect(() => parseTemplateOverhead('sabia-4=3+5,sabia-4=1+1')).toThrow(/"sabia-4" twice/);
  });
});
