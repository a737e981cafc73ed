'use strict';
/**
 * bench/RESULTS.md is written by more than one benchmark (`npm run bench`, `npm run bench:scale`,
 * `npm run bench -- --only estimate-accuracy`, `npm run bench -- --only temporal-cost`):
 * each owns one section between markers and replaces only that, so running one keeps the others.
 */
const { existsSync, readFileSync, writeFileSync } = require('node:fs');
const path = require('node:path');

const RESULTS = path.join(__dirname, 'RESULTS.md');
const SECTION_ORDER = ['main', 'scale', 'estimate', 'temporal_cost'];

/** Replaces (or adds) section `name` of RESULTS.md with `markdown`. */
function writeSection(name, markdown) {
  const text = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '';
  const sections = {};
  const pattern = /<!-- section:(\w+) -->\n([\s\S]*?)<!-- \/section:\1 -->\n?/g;
  let match;
  let found = false;
  while ((match = pattern.exec(text)) !== null) {
    sections[match[1]] = match[2];
    found = true;
  }
  // A file from before the markers is the main benchmark's whole output.
  if (!found && text.trim() !== '') sections.main = text.endsWith('\n') ? text : `${text}\n`;
  sections[name] = markdown.endsWith('\n') ? markdown : `${markdown}\n`;
  const names = [
    ...SECTION_ORDER.filter((n) => sections[n]),
    ...Object.keys(sections).filter((n) => !SECTION_ORDER.includes(n)),
  ];
  writeFileSync(
    RESULTS,
    names.map((n) => `<!-- section:${n} -->\n${sections[n]}<!-- /section:${n} -->\n`).join('\n'),
  );
}

module.exports = { writeSection };
