import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

const root = repoRoot();
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
const vectors = join(root, 'test', 'vectors', 'crush');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `shoal crush …` from the build (each start loads the whole CLI: keep the number of runs small). */
function shoal(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, 'crush', ...args], { encoding: 'utf8', cwd: root }, (error, stdout, stderr) => {
      const status = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ status, stdout, stderr });
    });
  });
}

test('shoal crush build prints the map file the golden vectors use', async () => {
  const r = await shoal('build', '--hosts', '3', '--osds-per-host', '10');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, readFileSync(join(vectors, 'map-3x10.json'), 'utf8'));
});

test('shoal crush test prints one line per input, identical to the golden vector', async () => {
  const map = join(vectors, 'map-3x10.json');
  const [r, out] = await Promise.all([
    shoal('test', '--map', map, '--rule', '0', '--num-rep', '3', '--min-x', '0', '--max-x', '1023'),
    shoal('test', '--map', map, '--rule', 'replicated_rule', '--num-rep', '3', '--min-x', '5', '--max-x', '204',
      '--mark-out', '3,7', '--show-utilization'),
  ]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, readFileSync(join(vectors, '3x10.rule-0.num-rep-3.txt'), 'utf8'));
  // By name, a sub-range, marked-out OSDs, utilization.
  assert.equal(out.status, 0, out.stderr);
  const lines = out.stdout.trimEnd().split('\n');
  const mappings = lines.filter((l) => l.startsWith('rule 0 x '));
  assert.equal(mappings.length, 200);
  assert.match(mappings[0]!, /^rule 0 x 5 \[\d+,\d+,\d+\]$/);
  for (const line of mappings) assert.doesNotMatch(line, /[[,](3|7)[\],]/);
  const utilization = lines.filter((l) => l.startsWith('osd.'));
  assert.equal(utilization.length, 30);
  assert.match(utilization.find((l) => l.startsWith('osd.3 '))!, /^osd\.3 count 0 /);
  const total = utilization.reduce((s, l) => s + Number(/count (\d+)/.exec(l)![1]), 0);
  assert.equal(total, 600);
});

test('shoal crush show prints the tree with weights and OSD status', async () => {
  const r = await shoal('show', '--map', join(vectors, 'map-racks-weighted.json'));
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.match(lines[1]!, /^-1\s+\S+\s+root default$/);
  assert.ok(lines.some((l) => /^-2\s+\S+\s+rack rack-0$/.test(l)));
  assert.ok(lines.some((l) => /^5\s+\S+\s+osd osd\.5 up out reweight 1\.00000$/.test(l)));
  assert.ok(lines.some((l) => /^9\s+\S+\s+osd osd\.9 up in reweight 0\.50000$/.test(l)));
  assert.ok(lines.some((l) => l === 'rule 0 replicated_rule (replicated): take default; chooseleaf firstn 0 type host; emit'));
});

test('shoal crush: bad input is a StorageError message and a non-zero exit, not a stack trace', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-crush-'));
  try {
    const notJson = join(dir, 'bad.json');
    writeFileSync(notJson, '{"format":');
    const map = join(vectors, 'map-3x10.json');
    // A structurally valid file whose hierarchy is broken is rejected by validation.
    const broken = JSON.parse(readFileSync(map, 'utf8')) as { map: { crush: { buckets: { items: { weight: number }[] }[] } } };
    broken.map.crush.buckets[0]!.items[0]!.weight += 1;
    const brokenPath = join(dir, 'broken.json');
    writeFileSync(brokenPath, JSON.stringify(broken));
    // Other bad values (ranges, ids, formats) are covered in process; these check the CLI's error path end to end.
    const cases: [string[], RegExp, number][] = [
      [['test', '--map', join(dir, 'missing.json'), '--rule', '0', '--num-rep', '3'], /^shoal: NOT_FOUND: map file .* does not exist/, 3],
      [['show', '--map', notJson], /^shoal: INVALID_ARGUMENT: map file is not JSON/, 2],
      [['show', '--map', brokenPath], /^shoal: INVALID_ARGUMENT: crush map: bucket default: weight of host-0/, 2],
      [['test', '--map', map, '--rule', 'nope', '--num-rep', '3'], /^shoal: NOT_FOUND: no CRUSH rule named "nope"/, 3],
      [['test', '--map', map, '--rule', '0', '--num-rep', '3', '--mark-out', '1,x'], /^shoal: INVALID_ARGUMENT: --mark-out/, 2],
    ];
    const runs = await Promise.all(cases.map(([args]) => shoal(...args)));
    cases.forEach(([args, pattern, status], i) => {
      const r = runs[i]!;
      assert.equal(r.status, status, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern, args.join(' '));
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      assert.equal(r.stdout, '');
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
