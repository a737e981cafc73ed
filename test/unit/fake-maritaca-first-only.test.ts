import { startFakeMaritaca, type FakeMaritacaServer } from '../../src/testing/fake-maritaca';

/** `invalidStructuredFirstOnly`: a re-ask (the same body again) is answered validly. */
describe('fake Maritaca: breaking first structured answers only', () => {
  let fake: FakeMaritacaServer;
  beforeAll(async () => {
    fake = await startFakeMaritaca({ invalidStructuredRate: 1, invalidStructuredFirstOnly: true, seed: 1 });
  });
  afterAll(async () => {
    await fake.close();
  });

  const ask = async (question: string): Promise<string> => {
    const response = await fetch(`${fake.url}/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer test-key', 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'sabia-4',
        max_tokens: 100,
        messages: [{ role: 'user', content: question }],
        response_format: {
          type: 'json_schema',
          json_schema: {
            name: 'n',
            schema: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] },
          },
        },
      }),
    });
    const body = (await response.json()) as { choices: { message: { content: string } }[] };
    return body.choices[0]!.message.content;
  };
  const valid = (text: string): boolean => {
    try {
      return Number.isInteger((JSON.parse(text) as { n?: unknown }).n);
    } catch {
      return false;
    }
  };

  test('the first answer is broken, the same request asked again is not; reset forgets', async () => {
    expect(valid(await ask('um'))).toBe(false);
    expect(valid(await ask('um'))).toBe(true);
    expect(valid(await ask('dois'))).toBe(false);
    fake.reset();
    expect(valid(await ask('um'))).toBe(false);
  });
});
