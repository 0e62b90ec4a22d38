// Prints the Lua scripts of the installed npm bullmq as JSON:
// {"version": "6.7.0", "scripts": {"<name>": {"keys": N, "content": "<lua>"}, ...}}
// (the bundled scripts that Node BullMQ loads, includes resolved).
'use strict';

const path = require('node:path');

// bullmq's package exports hide dist/; the files themselves are what Node BullMQ runs.
const root = path.dirname(require.resolve('bullmq/package.json'));
const scripts = require(path.join(root, 'dist/cjs/scripts/index.js'));
const { version } = require(path.join(root, 'dist/cjs/version.js'));

const result = {};
for (const script of Object.values(scripts)) {
  result[script.name] = { keys: script.keys, content: script.content };
}
process.stdout.write(JSON.stringify({ version, scripts: result }));
