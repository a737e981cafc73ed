#!/usr/bin/env node
'use strict';
/**
 * Rewrites the README's command table from the CLI's own definitions (run after `npm run build`;
 * `npm run docs:cli` does both). test/unit/command-table.test.ts fails when the two drift.
 */
const { readFileSync, writeFileSync } = require('node:fs');
const path = require('node:path');
const { buildProgram } = require('../lib/cli');
const { COMMAND_TABLE_END, COMMAND_TABLE_START, renderCommandTable } = require('../lib/cli/command-table');

const readme = path.join(__dirname, '..', 'README.md');
const text = readFileSync(readme, 'utf8');
const start = text.indexOf(COMMAND_TABLE_START);
const end = text.indexOf(COMMAND_TABLE_END);
if (start === -1 || end === -1) throw new Error('README.md has no command table markers');
writeFileSync(
  readme,
  text.slice(0, start) + renderCommandTable(buildProgram()) + text.slice(end + COMMAND_TABLE_END.length),
);
console.log('README.md command table updated');
