#!/usr/bin/env node
'use strict';
// Thin launcher: the CLI lives in the compiled package (run `npm run build` in a checkout).
require('../lib/cli/index.js')
  .main(process.argv)
  .then((code) => {
    process.exitCode = code;
  });
