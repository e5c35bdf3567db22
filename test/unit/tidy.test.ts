/** Checks on the code base itself (as TigerBeetle's tidy): documentation that must match the code. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { errorCodes } from '../../src/index.js';
import { repoRoot } from '../helpers/processes.js';

test('tidy: the README error catalogue lists exactly the ErrorCode union, with the same descriptions', () => {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const listed = [...readme.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
  assert.deepEqual(listed, errorCodes);
});

test('tidy: every source folder has a README.md', () => {
  const roots = ['src', 'monitor', 'osd', 'gateway', 'fuse', 'benchmarks'];
  const missing: string[] = [];
  const visit = (dir: string) => {
    const entries = readdirSync(join(repoRoot, dir));
    if (entries.some((e) => e.endsWith('.ts')) && !existsSync(join(repoRoot, dir, 'README.md'))) missing.push(dir);
    for (const e of entries) {
      if (e === 'generated' || e === 'node_modules') continue;
      if (statSync(join(repoRoot, dir, e)).isDirectory()) visit(join(dir, e));
    }
  };
  for (const root of roots) if (existsSync(join(repoRoot, root))) visit(root);
  assert.deepEqual(missing, []);
});

test('tidy: only entry points exit the process or read argv', () => {
  const offenders: string[] = [];
  const visit = (dir: string) => {
    for (const e of readdirSync(join(repoRoot, dir))) {
      const path = join(dir, e);
      if (statSync(join(repoRoot, path)).isDirectory()) {
        if (e !== 'generated') visit(path);
        continue;
      }
      if (!e.endsWith('.ts') || e === 'main.ts' || e === 'run.ts') continue;
      const text = readFileSync(join(repoRoot, path), 'utf8');
      if (/process\.exit\(|process\.argv/.test(text)) offenders.push(path);
    }
  };
  for (const root of ['src', 'monitor', 'osd', 'gateway', 'fuse']) if (existsSync(join(repoRoot, root))) visit(root);
  assert.deepEqual(offenders, []);
});
