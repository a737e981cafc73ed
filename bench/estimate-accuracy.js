#!/usr/bin/env node
'use strict';
/**
 * Estimate accuracy (issue 14), section 6 of bench/RESULTS.md:
 *
 * - estimate time: `estimateBatchCost` on 100,000 two-message requests of varied Portuguese text,
 *   each time in a fresh Node process, so the tokenizer's lazy vocabulary load is counted
 *   (goal: under 3 s);
 * - estimate error: a real 1,000-request batch through a Temporal dev server, the CLI worker and
 *   the fake Maritaca (`replyTokens: 'max'`), with the conservative estimate (default template
 *   overhead) and the estimate recomputed with the overhead the batch learned compared with what
 *   the fake billed (goal: within 0.5% once the overhead is learned).
 *
 * Run after `npm run build`:
 *
 *   npm run bench -- --only estimate-accuracy
 *   node bench/estimate-accuracy.js [--requests 1000] [--estimate-requests 100000] [--reps 3]
 */
const { execFile, spawn } = require('node:child_process');
const { readFileSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs, promisify } = require('node:util');
const { writeSection } = require('./results-file');

const execFileAsync = promisify(execFile);
const ROOT = path.join(__dirname, '..');
const CLI = path.join(ROOT, 'bin', 'maritaca-batch.js');
const FIXTURE = path.join(__dirname, 'fixtures', 'prompts.jsonl');
const KEY = 'bench-key';
const MODEL = 'sabia-4';
const GOAL_SECONDS = 3;
const GOAL_ERROR_PCT = 0.5;
const DEFAULTS = { requests: 1000, estimateRequests: 100_000, reps: 3, maxTokens: 64, concurrency: 50 };

/** The seeded generator the tokenizer tests and the fake server use. */
const { mulberry32: seeded } = require('../lib/testing/seeded-random');

const FIRST_NAMES = (
  'Ana Beatriz Bruno Camila Carlos Daniela Eduardo Fernanda Gabriel Helena Igor Isabela João Júlia ' +
  'Karina Lucas Luíza Marcos Mariana Mateus Natália Otávio Patrícia Paulo Rafael Renata Rodrigo Sabrina ' +
  'Sérgio Tatiane Thiago Valéria Vinícius Yasmin Zuleica Araci Iracema Moacir Ubirajara Conceição'
).split(' ');
const SURNAMES = (
  'Silva Santos Oliveira Souza Rodrigues Ferreira Alves Pereira Lima Gomes Costa Ribeiro Martins ' +
  'Carvalho Almeida Lopes Soares Fernandes Vieira Barbosa Rocha Dias Nascimento Andrade Moreira Nunes ' +
  'Marques Machado Mendes Freitas Cardoso Ramos Gonçalves Santana Teixeira Araújo Cavalcanti Bezerra'
).split(' ');
const CITIES = (
  'São Paulo|Rio de Janeiro|Belo Horizonte|Salvador|Fortaleza|Recife|Porto Alegre|Curitiba|Manaus|' +
  'Belém|Goiânia|Campinas|São Luís|Maceió|Natal|Teresina|João Pessoa|Florianópolis|Cuiabá|Aracaju|' +
  'Londrina|Juiz de Fora|Uberlândia|Ribeirão Preto|Sorocaba|Feira de Santana|Caxias do Sul|Petrolina|' +
  'Chapecó|Mossoró|Itajaí|Parintins|Pirenópolis|Paraty|Ouro Preto|Vitória da Conquista|Macapá|Boa Vista'
).split('|');
const CONTEXTS = [
  (r) => `Cliente: ${r.name()}, de ${r.city()}, pedido nº ${r.digits(6)} de ${r.date()}.`,
  (r) => `Protocolo ${r.digits(10)}, aberto em ${r.date()} por ${r.name()}.`,
  (r) => `Valor em discussão: R$ ${r.int(1, 9999)},${r.digits(2)}, com vencimento em ${r.date()}.`,
  (r) => `Contexto: ${r.name()} mora em ${r.city()} e é cliente desde ${r.int(1998, 2026)}.`,
  (r) => `Mensagem recebida às ${r.int(0, 23)}h${r.digits(2)} de ${r.name()} (${r.city()}).`,
];
const SUFFIXES = ['zinho', 'zinha', 'íssimo', 'mente', 'ção', 'inha', 'ão', 's', 'ado', 'eiro'];
const ACCENTS = {
  á: 'a',
  à: 'a',
  â: 'a',
  ã: 'a',
  é: 'e',
  ê: 'e',
  í: 'i',
  ó: 'o',
  ô: 'o',
  õ: 'o',
  ú: 'u',
  ç: 'c',
};

/** Portuguese sentences and system prompts of bench/fixtures/prompts.jsonl. */
function portugueseCorpus() {
  const prompts = readFileSync(FIXTURE, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line))
    .filter((p) => p.lang === 'pt');
  const contents = (role) => [
    ...new Set(prompts.flatMap((p) => p.messages.filter((m) => m.role === role).map((m) => m.content))),
  ];
  const sentences = contents('user')
    .flatMap((text) => text.split(/\n+/).flatMap((paragraph) => paragraph.split(/(?<=[.?!:])\s+/)))
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  return { systems: contents('system'), sentences: [...new Set(sentences)] };
}

/**
 * `n` two-message requests (system + user) of varied Portuguese: one of the corpus's system
 * prompts, and a user message of one to five corpus sentences, sometimes with a line of names,
 * cities, dates and numbers, and with about 4% of its words turned into rarer forms (typos,
 * suffixes, dropped accents), so that the text has a long tail of words like real traffic and no
 * two user messages are alike (a request number ends each one).
 */
function variedRequests(n, seed, maxTokens = DEFAULTS.maxTokens) {
  const { systems, sentences } = portugueseCorpus();
  const random = seeded(seed);
  const int = (min, max) => min + Math.floor(random() * (max - min + 1));
  const pick = (list) => list[Math.floor(random() * list.length)];
  const r = {
    int,
    digits: (k) => Array.from({ length: k }, () => String(int(0, 9))).join(''),
    name: () => `${pick(FIRST_NAMES)} ${pick(SURNAMES)}`,
    city: () => pick(CITIES),
    date: () =>
      `${String(int(1, 28)).padStart(2, '0')}/${String(int(1, 12)).padStart(2, '0')}/${int(2019, 2026)}`,
  };
  const rarer = (word) => {
    const letters = Array.from(word);
    switch (int(0, 3)) {
      case 0: // a typo: two neighbouring letters swapped
        if (letters.length > 3) {
          const i = int(1, letters.length - 2);
          [letters[i], letters[i + 1]] = [letters[i + 1], letters[i]];
        }
        return letters.join('');
      case 1: // a letter doubled
        return letters.map((c, i) => (i === Math.floor(letters.length / 2) ? c + c : c)).join('');
      case 2: // accents dropped, as on a phone keyboard
        return letters.map((c) => ACCENTS[c] ?? c).join('');
      default: // a derived form
        return word.replace(/[aeo]$/, '') + pick(SUFFIXES);
    }
  };
  const vary = (sentence) =>
    sentence
      .split(' ')
      .map((word) => (word.length > 2 && /^\p{L}+$/u.test(word) && random() < 0.04 ? rarer(word) : word))
      .join(' ');
  return Array.from({ length: n }, (_, i) => {
    const parts = Array.from({ length: pick([1, 1, 2, 2, 2, 3, 3, 4, 5]) }, () => vary(pick(sentences)));
    if (random() < 0.6) parts.splice(int(0, parts.length), 0, pick(CONTEXTS)(r));
    return {
      id: `r${i}`,
      model: MODEL,
      maxTokens,
      messages: [
        { role: 'system', content: pick(systems) },
        { role: 'user', content: `${parts.join(random() < 0.3 ? '\n' : ' ')} (pedido ${i})` },
      ],
    };
  });
}

/**
 * Child mode: builds the requests (not timed), then times loading the estimate module and one
 * `estimateBatchCost` call in this fresh process, the tokenizer's vocabulary load included, and a
 * second call with everything loaded. Prints one JSON line.
 */
function timeEstimateInThisProcess(n, seed) {
  const requests = variedRequests(n, seed).map(({ messages, model, maxTokens }) => ({
    messages,
    model,
    maxTokens,
  }));
  const chars = requests.reduce(
    (sum, r) => sum + r.messages[0].content.length + r.messages[1].content.length,
    0,
  );
  const distinctUsers = new Set(requests.map((r) => r.messages[1].content)).size;
  const started = performance.now();
  const { estimateBatchCost } = require('../lib/activities/estimate-cost');
  const cold = estimateBatchCost({ model: MODEL, requests });
  const coldMs = performance.now() - started;
  const again = performance.now();
  estimateBatchCost({ model: MODEL, requests });
  const warmMs = performance.now() - again;
  console.log(
    JSON.stringify({
      requests: n,
      chars,
      distinctUsers,
      inputTokens: cold.totalInputTokens,
      inputTokenCount: cold.inputTokenCount,
      coldMs,
      warmMs,
    }),
  );
}

async function timeEstimates(n, reps) {
  const runs = [];
  for (let rep = 0; rep < reps; rep++) {
    const { stdout } = await execFileAsync(
      process.execPath,
      [
        path.join(__dirname, 'estimate-accuracy.js'),
        '--child-time-estimate',
        String(n),
        '--seed',
        String(14 + rep),
      ],
      { maxBuffer: 1 << 20 },
    );
    runs.push(JSON.parse(stdout.trim().split('\n').at(-1)));
    console.log(`estimate time rep ${rep + 1}: ${JSON.stringify(runs.at(-1))}`);
  }
  return runs;
}

/** Starts `maritaca-batch worker` and resolves once it polls. */
function startWorker(env) {
  const child = spawn(process.execPath, [CLI, 'worker'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const ready = new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => chunk.toString().includes('Worker polling') && resolve());
    child.once('exit', (code) => reject(new Error(`worker exited ${code}`)));
  });
  return { child, ready };
}

/** Runs a real batch against the fake and compares the estimates with what the fake billed. */
async function measureError({ requests: n, maxTokens, concurrency }) {
  const { Client, Connection } = require('@temporalio/client');
  const {
    DEFAULT_TEMPLATE_OVERHEAD,
    MaritacaBatchClient,
    estimateBatchCost,
    estimateInputOf,
  } = require('../lib');
  const {
    DEFAULT_FAKE_TEMPLATE_OVERHEAD,
    freePort,
    startDevServer,
    startFakeMaritaca,
  } = require('../lib/testing');
  const dev = await startDevServer({ port: await freePort(), uiPort: await freePort() });
  const fake = await startFakeMaritaca({
    apiKey: KEY,
    replyTokens: 'max',
    latencyMedianMs: 2,
    latencyP99Ms: 5,
    seed: 14,
  });
  const worker = startWorker({
    TEMPORAL_ADDRESS: dev.address,
    TEMPORAL_TASK_QUEUE: 'bench-estimate',
    MARITACA_API_KEY: KEY,
    MARITACA_BASE_URL: fake.url,
    MARITACA_RESULTS_DIR: path.join(os.tmpdir(), 'maritaca-bench-results'),
  });
  let connection;
  try {
    await worker.ready;
    connection = await Connection.connect({ address: dev.address });
    const batches = new MaritacaBatchClient({
      client: new Client({ connection }),
      taskQueue: 'bench-estimate',
    });
    const requests = variedRequests(n, 1014, maxTokens);
    const options = { model: MODEL, maxConcurrency: concurrency, autoApproveBelow: 1000 };
    const conservative = estimateBatchCost(estimateInputOf(requests, options));
    fake.reset();
    const started = Date.now();
    const result = await (await batches.start(requests, options)).result();
    const elapsedS = (Date.now() - started) / 1000;
    const billed = fake.stats().billed;
    const learned = result.templateOverhead?.[MODEL];
    if (!learned) throw new Error(`the batch learned no template overhead for ${MODEL}`);
    const relearned = estimateBatchCost(estimateInputOf(requests, { ...options, templateOverhead: learned }));
    return {
      requests: n,
      maxTokens,
      concurrency,
      status: result.status,
      counts: result.counts,
      elapsedS,
      actualCost: result.actualCost,
      batchEstimateCost: result.estimate?.totalCost,
      billed,
      fakeOverhead: DEFAULT_FAKE_TEMPLATE_OVERHEAD,
      defaultOverhead: DEFAULT_TEMPLATE_OVERHEAD,
      learned,
      conservative: pick(conservative),
      relearned: pick(relearned),
    };
  } finally {
    worker.child.kill('SIGTERM');
    await connection?.close();
    await fake.close();
    await dev.stop();
  }
}

function pick(estimate) {
  const { totalInputTokens, totalOutputTokens, totalCost, inputTokenCount } = estimate;
  return { totalInputTokens, totalOutputTokens, totalCost, inputTokenCount };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const errorPct = (estimate, real) => (100 * (estimate - real)) / real;
const signed = (pct, digits = 2) => `${pct >= 0 ? '+' : '−'}${Math.abs(pct).toFixed(digits)}%`;
const brl = (value) => `R$ ${value.toFixed(6)}`;
const int = (value) => value.toLocaleString('en');

function section({ startedAt, load, times, error: e }) {
  const cold = times.map((t) => t.coldMs / 1000);
  const warm = times.map((t) => t.warmMs / 1000);
  const spread = (values) =>
    `${median(values).toFixed(2)} s (${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)})`;
  const first = times[0];
  const coldMedian = median(cold);
  const consCost = errorPct(e.conservative.totalCost, e.billed.costBRL);
  const consPrompt = errorPct(e.conservative.totalInputTokens, e.billed.promptTokens);
  const learnedCost = errorPct(e.relearned.totalCost, e.billed.costBRL);
  const learnedPrompt = errorPct(e.relearned.totalInputTokens, e.billed.promptTokens);
  const worstLearned = Math.max(Math.abs(learnedCost), Math.abs(learnedPrompt));
  const overhead = (o) => `${o.perRequest} + ${o.perMessage}/message`;
  return [
    '## 6. Estimate accuracy',
    '',
    `Run ${startedAt.toISOString()} by \`bench/estimate-accuracy.js\` (\`npm run bench -- --only estimate-accuracy\`) on ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, load average ${load.toFixed(1)} when it started. Requests are two messages, ${MODEL}: one of the ${portugueseCorpus().systems.length} Portuguese system prompts of \`bench/fixtures/prompts.jsonl\` and a user message of 1–5 of its Portuguese sentences, with names, cities, dates and numbers and ~4% of words made rarer (typos, suffixes, dropped accents); no two user messages alike.`,
    '',
    `**Estimate time** (goal < ${GOAL_SECONDS} s): \`estimateBatchCost\` on ${int(first.requests)} requests (${(first.chars / 1e6).toFixed(1)} M characters, ${int(first.distinctUsers)} distinct user messages, ${int(first.inputTokens)} input tokens counted ${first.inputTokenCount}), each run in a fresh Node process, module and vocabulary load included: **${spread(cold)}** over ${times.length} processes (each its own draw of requests), **${coldMedian < GOAL_SECONDS ? 'within' : 'over'}** the goal. A second estimate in the same process (everything loaded): ${spread(warm)}.`,
    '',
    `**Estimate error** (goal within ±${GOAL_ERROR_PCT}% once the overhead is learned): one batch of ${int(e.requests)} requests, \`maxTokens\` ${e.maxTokens}, concurrency ${e.concurrency}, auto-approved, through the dev server, the CLI worker and the fake Maritaca (\`replyTokens: 'max'\`, log-normal latency median 2 ms, p99 5 ms; its template overhead ${overhead(e.fakeOverhead)}); status ${e.status}, ${e.counts ? `${int(e.counts.succeeded)} succeeded, ` : ''}${int(e.billed.calls)} calls billed, ${e.elapsedS.toFixed(1)} s. Error = (estimate − billed) / billed.`,
    '',
    '| estimate | template overhead | prompt tokens | completion tokens | cost | cost error | prompt-token error |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    `| fake server's bill (\`stats().billed\`) | ${overhead(e.fakeOverhead)} | ${int(e.billed.promptTokens)} | ${int(e.billed.completionTokens)} | ${brl(e.billed.costBRL)} | | |`,
    `| conservative (default, before any answer) | ${overhead(e.defaultOverhead)} | ${int(e.conservative.totalInputTokens)} | ${int(e.conservative.totalOutputTokens)} | ${brl(e.conservative.totalCost)} | ${signed(consCost)} | ${signed(consPrompt)} |`,
    `| **with the overhead the batch learned** (\`result.templateOverhead\`) | ${overhead(e.learned)} | ${int(e.relearned.totalInputTokens)} | ${int(e.relearned.totalOutputTokens)} | ${brl(e.relearned.totalCost)} | **${signed(learnedCost, 3)}** | **${signed(learnedPrompt, 3)}** |`,
    '',
    `Learned estimate / bill: cost ${(e.relearned.totalCost / e.billed.costBRL).toFixed(5)}, prompt tokens ${(e.relearned.totalInputTokens / e.billed.promptTokens).toFixed(5)}; **${worstLearned <= GOAL_ERROR_PCT ? 'within' : 'outside'}** the ±${GOAL_ERROR_PCT}% goal. Every request has two messages, so the batch learns its ${e.learned.perRequest + 2 * e.learned.perMessage} template tokens per request as a per-message figure. The fake counts prompts with the tokenizer the estimate uses and adds a fixed overhead, so the learned estimate can match its bill exactly; against Maritaca the residual is whatever its template varies by between requests. Conservative estimate / bill: ${(e.conservative.totalCost / e.billed.costBRL).toFixed(3)} (high, never low, so it can be approved as the budget). The batch's own \`actualCost\` ${brl(e.actualCost)} (${signed(errorPct(e.actualCost, e.billed.costBRL), 3)} against the bill); its estimate shown at approval ${e.batchEstimateCost === undefined ? 'absent' : brl(e.batchEstimateCost)}. Single batch.`,
    '',
  ].join('\n');
}

/** Runs the section and writes it into bench/RESULTS.md. */
async function runEstimateAccuracy(overrides = {}) {
  const settings = { ...DEFAULTS, ...overrides };
  const startedAt = new Date();
  const load = os.loadavg()[0];
  const times = await timeEstimates(settings.estimateRequests, settings.reps);
  const error = await measureError(settings);
  console.log(`estimate error: ${JSON.stringify(error)}`);
  const markdown = section({ startedAt, load, times, error });
  writeSection('estimate', markdown);
  console.log(`\n${markdown}`);
  return { times, error };
}

module.exports = { runEstimateAccuracy, variedRequests };

if (require.main === module) {
  const { values } = parseArgs({
    options: {
      'child-time-estimate': { type: 'string' },
      seed: { type: 'string', default: '14' },
      requests: { type: 'string' },
      'estimate-requests': { type: 'string' },
      reps: { type: 'string' },
      'max-tokens': { type: 'string' },
    },
  });
  if (values['child-time-estimate'] !== undefined) {
    timeEstimateInThisProcess(Number(values['child-time-estimate']), Number(values.seed));
  } else {
    const overrides = {};
    if (values.requests) overrides.requests = Number(values.requests);
    if (values['estimate-requests']) overrides.estimateRequests = Number(values['estimate-requests']);
    if (values.reps) overrides.reps = Number(values.reps);
    if (values['max-tokens']) overrides.maxTokens = Number(values['max-tokens']);
    runEstimateAccuracy(overrides).catch((err) => {
      console.error(err);
      process.exitCode = 1;
    });
  }
}
