// Evaluate flags of a flagd flag file with the real evaluator (@openfeature/flagd-core) for a list of contexts.
// stdin: {"file": PATH, "flags": [{"key": K, "type": "boolean"|"string"|"number"|"object", "contexts": [...]}]}
// stdout: {"version": V, "results": {K: [{"reason": R, "variant": V|null, "value": X}]}}
'use strict';
const fs = require('fs');
const { FlagdCore } = require('@openfeature/flagd-core');
const YAML = require('yaml');

const defaults = { boolean: false, string: '', number: 0, object: {} };
const request = JSON.parse(fs.readFileSync(0, 'utf8'));
let text = fs.readFileSync(request.file, 'utf8');
if (/\.ya?ml$/i.test(request.file)) {
  text = JSON.stringify(YAML.parse(text, { maxAliasCount: 0 }));
}
const silent = { error() {}, warn() {}, info() {}, debug() {} };
const core = new FlagdCore(undefined, silent);
core.setConfigurations(text);
const results = {};
for (const { key, type, contexts } of request.flags) {
  results[key] = contexts.map((context) => {
    const r = core.resolve(type, key, defaults[type], context, silent);
    return { reason: r.reason, variant: r.variant === undefined ? null : r.variant, value: r.value };
  });
}
const version = require('@openfeature/flagd-core/package.json').version;
process.stdout.write(JSON.stringify({ version, results }));
