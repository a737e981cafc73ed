#!/usr/bin/env node
'use strict';
// Thin launcher: the CLI lives in the compiled package (run `npm run build` in a checkout).
// The AWS SDK warns on every start under Node 20 about its releases from 2027 on; this package
// pins SDK releases that support Node 20, so the warning would only be noise in every command.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
require('../lib/cli/index.js')
  .main(process.argv)
  .then((code) => {
    process.exitCode = code;
  });
