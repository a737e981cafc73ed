#!/usr/bin/env node
/*
 * Measures src/activities/token-estimate.ts against Maritaca's real tokenizer.
 *
 * Reads bench/fixtures/prompts.jsonl, whose `realTokens` (content tokens of all messages,
 * counted by the `maritalk` package's tokenizer) bench/tokenizer-accuracy.py (re)computes,
 * estimates each prompt's content tokens, and prints the error per language and overall.
 *
 *   node bench/tokenizer-accuracy.js [fixture.jsonl] [--worst N] [--json]
 *
 * Needs no build: the estimator is loaded from lib/ when lib/ is at least as new as src/,
 * otherwise compiled from src/ in memory with @swc/core (a dev dependency), so the numbers
 * always describe the current source even while other parts of the project do not build.
 */
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const Module = require('node:module');

const ROOT = path.resolve(__dirname, '..');
const SRC = path.join(ROOT, 'src', 'activities', 'token-estimate.ts');
const LIB = path.join(ROOT, 'lib', 'activities', 'token-estimate.js');

function loadEstimator() {
  if (fs.existsSync(LIB) && fs.statSync(LIB).mtimeMs >= fs.statSync(SRC).mtimeMs) {
    return { module: require(LIB), from: 'lib/activities/token-estimate.js' };
  }
  const { transformSync } = require('@swc/core');
  const { code } = transformSync(fs.readFileSync(SRC, 'utf8'), {
    filename: SRC,
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    module: { type: 'commonjs' },
  });
  const mod = new Module(SRC, module);
  mod.filename = SRC;
  mod.paths = Module._nodeModulePaths(path.dirname(SRC));
  mod._compile(code, SRC);
  return { module: mod.exports, from: 'src/activities/token-estimate.ts (compiled in memory)' };
}

function parseArgs(argv) {
  const args = { fixture: path.join(__dirname, 'fixtures', 'prompts.jsonl'), worst: 0, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--worst') args.worst = Number(argv[++i] ?? 10);
    else if (a === '--json') args.json = true;
    else args.fixture = path.resolve(a);
  }
  return args;
}

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function summarize(rows) {
  const abs = rows.map((r) => Math.abs(r.errorPct)).sort((a, b) => a - b);
  const sum = (xs) => xs.reduce((a, b) => a + b, 0);
  const realTotal = sum(rows.map((r) => r.real));
  const estimateTotal = sum(rows.map((r) => r.estimate));
  return {
    prompts: rows.length,
    realTokens: realTotal,
    estimatedTokens: estimateTotal,
    mapePct: sum(abs) / rows.length,
    medianAbsPct: quantile(abs, 0.5),
    p90AbsPct: quantile(abs, 0.9),
    p95AbsPct: quantile(abs, 0.95),
    maxAbsPct: abs[abs.length - 1],
    meanSignedPct: sum(rows.map((r) => r.errorPct)) / rows.length,
    underestimatedShare: rows.filter((r) => r.estimate < r.real).length / rows.length,
    ratio: estimateTotal / realTotal,
  };
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const { module: estimator, from } = loadEstimator();
  const lines = fs
    .readFileSync(args.fixture, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
  const prompts = lines.map((l) => JSON.parse(l));
  const missing = prompts.filter((p) => typeof p.realTokens !== 'number').length;
  if (missing > 0) {
    console.error(`${missing} prompts have no realTokens: run python bench/tokenizer-accuracy.py first`);
    process.exit(1);
  }

  const rows = prompts.map((p, index) => {
    let estimate = 0;
    for (const m of p.messages) estimate += estimator.estimateTextTokens(m.content);
    return {
      index,
      lang: p.lang,
      holdout: p.split === 'holdout',
      real: p.realTokens,
      estimate,
      errorPct: ((estimate - p.realTokens) / p.realTokens) * 100,
    };
  });

  // Throughput on the same prompts, the cost that matters when a batch has 100k requests.
  const rounds = 200;
  const started = process.hrtime.bigint();
  let sink = 0;
  for (let r = 0; r < rounds; r++)
    for (const p of prompts) sink += estimator.estimateMessageTokens(p.messages);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const requestsPerSecond = (rounds * prompts.length) / seconds;

  const langs = ['pt', 'en', 'mixed', 'code'];
  const report = {
    estimator: from,
    fixture: path.relative(ROOT, args.fixture),
    counted: prompts[0].counted,
    overall: summarize(rows),
    byLanguage: Object.fromEntries(
      langs
        .map((l) => [l, rows.filter((r) => r.lang === l)])
        .filter(([, rs]) => rs.length > 0)
        .map(([l, rs]) => [l, summarize(rs)]),
    ),
    // Prompts written after the constants were fitted, and never used to fit them.
    holdout: rows.some((r) => r.holdout) ? summarize(rows.filter((r) => r.holdout)) : null,
    requestsPerSecond: Math.round(requestsPerSecond),
    checksum: sink,
  };

  if (args.json) {
    console.log(JSON.stringify(report, null, 2));
    return;
  }
  const pct = (x) => `${x >= 0 ? ' ' : ''}${x.toFixed(1)}%`.padStart(7);
  console.log(`estimator: ${report.estimator}`);
  console.log(`fixture:   ${report.fixture} (${rows.length} prompts)`);
  console.log(`real:      ${report.counted}`);
  console.log(
    'error = (estimate - real) / real per prompt, content tokens only; "holdout" prompts (also in "all")',
  );
  console.log('were written after the constants were fitted\n');
  console.log('lang      n   real tok   MAPE  median    p90    p95    max   bias  under  sum(est)/sum(real)');
  const line = (name, s) =>
    console.log(
      `${name.padEnd(7)} ${String(s.prompts).padStart(3)} ${String(s.realTokens).padStart(10)} ${pct(s.mapePct)}${pct(s.medianAbsPct)}${pct(s.p90AbsPct)}${pct(s.p95AbsPct)}${pct(s.maxAbsPct)}${pct(s.meanSignedPct)}${pct(s.underestimatedShare * 100)}  ${s.ratio.toFixed(3)}`,
    );
  for (const [l, s] of Object.entries(report.byLanguage)) line(l, s);
  line('all', report.overall);
  if (report.holdout) line('holdout', report.holdout);
  console.log(
    `\nthroughput: ${report.requestsPerSecond.toLocaleString('en-US')} requests/s (estimateMessageTokens)`,
  );

  if (args.worst > 0) {
    console.log(`\nworst ${args.worst}:`);
    for (const r of [...rows]
      .sort((a, b) => Math.abs(b.errorPct) - Math.abs(a.errorPct))
      .slice(0, args.worst)) {
      const text = prompts[r.index].messages
        .map((m) => m.content)
        .join(' | ')
        .replace(/\s+/g, ' ');
      console.log(`${pct(r.errorPct)} real ${r.real} est ${r.estimate} [${r.lang}] ${text.slice(0, 110)}`);
    }
  }
}

main();
