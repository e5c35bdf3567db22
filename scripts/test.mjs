#!/usr/bin/env node
// Runs the compiled tests under Node's built-in runner. Finding the files here (instead of passing a glob to
// `node --test`) behaves the same on Node 20 and 22+. Arguments filter by path substring: `npm test -- crush`.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const testRoot = join(root, 'dist', 'test');

function findTests(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return findTests(path);
    return entry.name.endsWith('.test.js') ? [path] : [];
  });
}

const filters = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const flags = process.argv.slice(2).filter((a) => a.startsWith('-'));
const files = findTests(testRoot)
  .filter((f) => filters.length === 0 || filters.some((filter) => relative(root, f).includes(filter)))
  .sort();
if (files.length === 0) {
  process.stderr.write(`no test files match ${filters.join(' ')}\n`);
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--enable-source-maps', ...flags, ...files], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
