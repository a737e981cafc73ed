/**
 * The fake Maritaca's tool calls and JSON answers are what OpenAI-compatible clients parse: the
 * Python `openai` SDK (pip-installed into the tools venv) reads them from the real HTTP server.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import Ajv from 'ajv';
import { startFakeMaritaca, type FakeMaritacaServer } from '../../src/testing/fake-maritaca';
import { installIntoToolsVenv, isExecutable, toolsVenvCommand } from '../../src/testing/tools-venv';

const run = promisify(execFile);
const OPENAI_REQUIREMENT = 'openai>=1.50,<3';

const invoice = {
  type: 'object',
  properties: {
    total: { type: 'number', minimum: 0 },
    supplier: { type: 'string', minLength: 1 },
    paid: { type: 'boolean' },
  },
  required: ['total', 'supplier', 'paid'],
};

const SCRIPT = `
import json, sys
from openai import OpenAI
url, schema = sys.argv[1], json.loads(sys.argv[2])
client = OpenAI(base_url=url, api_key="test-key", max_retries=0)
tool = {"type": "function", "function": {"name": "extract_invoice", "parameters": schema}}
called = client.chat.completions.create(
    model="sabia-4",
    messages=[{"role": "user", "content": "Nota: R$ 120,00, Padaria Sol, paga."}],
    tools=[tool],
    tool_choice={"type": "function", "function": {"name": "extract_invoice"}},
    max_tokens=200,
)
call = called.choices[0].message.tool_calls[0]
answered = client.chat.completions.create(
    model="sabia-4",
    messages=[{"role": "user", "content": "Nota: R$ 120,00, Padaria Sol, paga."}],
    response_format={"type": "json_schema", "json_schema": {"name": "invoice", "schema": schema}},
    max_tokens=200,
)
print(json.dumps({
    "finish": called.choices[0].finish_reason,
    "name": call.function.name,
    "arguments": json.loads(call.function.arguments),
    "content": json.loads(answered.choices[0].message.content),
    "usage": called.usage.prompt_tokens,
}))
`;

/** A Python that imports `openai`, installing it into the tools venv when needed; or why not. */
async function pythonWithOpenAI(): Promise<{ python: string } | { skip: string }> {
  const python = toolsVenvCommand('python');
  const hasOpenAI = async (candidate: string) =>
    (await isExecutable(candidate)) &&
    (await run(candidate, ['-c', 'import openai']).then(
      () => true,
      () => false,
    ));
  if (await hasOpenAI(python)) return { python };
  try {
    const installed = await installIntoToolsVenv(
      OPENAI_REQUIREMENT,
      { command: 'python', envVar: 'OPENAI_PYTHON', venvFirst: true },
      (line) => console.log(line),
    );
    return (await hasOpenAI(installed))
      ? { python: installed }
      : { skip: 'pip installed openai, but it does not import' };
  } catch (err) {
    return { skip: (err as Error).message.split('\n')[0]! };
  }
}

describe('the Python openai SDK reads the fake server', () => {
  let fake: FakeMaritacaServer;
  beforeAll(async () => {
    fake = await startFakeMaritaca({ seed: 3 });
  });
  afterAll(async () => {
    await fake?.close();
  });

  test('a forced tool call and a json_schema answer parse, and match the schema', async () => {
    const prepared = await pythonWithOpenAI();
    if ('skip' in prepared) {
      console.log(`skipped: ${prepared.skip}`);
      return;
    }
    const { stdout } = await run(prepared.python, ['-c', SCRIPT, fake.url, JSON.stringify(invoice)]);
    const answer = JSON.parse(stdout) as {
      finish: string;
      name: string;
      arguments: unknown;
      content: unknown;
    };
    expect(answer.finish).toBe('tool_calls');
    expect(answer.name).toBe('extract_invoice');
    const validate = new Ajv().compile(invoice);
    expect(validate(answer.arguments)).toBe(true);
    expect(validate(answer.content)).toBe(true);
  }, 240_000);
});
