import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convert, parseAnchor, type Baseline } from '../../../benchmarks/lib/baselines.js';
import { aggregate, cpuCause, gapLines, goalMet, median, medianCpu, renderMarkdown, renderSvg, replaceSection, spread, type Report } from '../../../benchmarks/lib/report-core.js';
import { parseProcStat, parseProcessTicks, startCpuMeter } from '../../../benchmarks/lib/cpu.js';
import { readFigures, type Figure } from '../../../benchmarks/lib/results.js';

const fig = (over: Partial<Figure>): Figure => ({ benchmark: 'objects', workload: 'write 4 KiB c16', metric: 'ops/s', value: 1, unit: 'ops/s', higherIsBetter: true, ...over });

test('median and spread: odd and even counts, unsorted input left as it was', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
  const values = [5, 1, 9];
  assert.deepEqual(spread(values), { median: 5, min: 1, max: 9, values: [5, 1, 9] });
});

test('parseAnchor groups the repetitions of results.tsv and skips lines without a value', () => {
  const tsv = 'rados\twrite 4K t16\tops/s\t1\t860\nrados\twrite 4K t16\tops/s\t2\t758\nrados\twrite 4K t16\tops/s\t3\t761\nbroken line\n\nrbd\tx\tIOPS\t1\t\n';
  const anchor = parseAnchor(tsv);
  assert.deepEqual(anchor.get('rados|write 4K t16|ops/s'), [860, 758, 761]);
  assert.equal(anchor.size, 1);
});

test('convert: MB/s, MiB/s and Gbit/s into each other, ops/s and IOPS alike, nothing else', () => {
  assert.equal(convert(1, 'MiB/s', 'MB/s'), 1.048576);
  assert.equal(convert(8, 'Gbit/s', 'MB/s'), 1000);
  assert.equal(convert(100, 'IOPS', 'ops/s'), 100);
  assert.throws(() => convert(1, 's', 'MB/s'), /cannot compare s with MB\/s/);
});

test('aggregate: median and spread per workload, recorded Ceph converted, machine limit divided by the copies', () => {
  const baselines: Record<string, Baseline> = {
    'objects|write 4 MiB c16': { ceph: { section: 'rados', test: 'write 4M t16', unit: 'MB/s', realUnit: 'MiB/s' }, limit: { machine: 'seq write', divide: 3 } },
  };
  const anchor = new Map([['rados|write 4M t16|MB/s', [100, 200, 300]]]);
  const figures = [
    fig({ benchmark: 'machine', workload: 'seq write', metric: 'MiB/s', unit: 'MiB/s', value: 600 }),
    fig({ workload: 'write 4 MiB c16', metric: 'MB/s', unit: 'MB/s', value: 50, goal: '>= 0.5x limit' }),
    fig({ workload: 'write 4 MiB c16', metric: 'MB/s', unit: 'MB/s', value: 70, goal: '>= 0.5x limit' }),
    fig({ workload: 'write 4 MiB c16', metric: 'MB/s', unit: 'MB/s', value: 60, goal: '>= 0.5x limit' }),
  ];
  const rows = aggregate(figures, anchor, baselines);
  assert.equal(rows.length, 2);
  const row = rows[1];
  assert.ok(row);
  assert.deepEqual([row.shoal.median, row.shoal.min, row.shoal.max], [60, 50, 70]);
  assert.equal(row.ceph?.source, 'recorded anchor');
  assert.ok(Math.abs((row.ceph?.median ?? 0) - 209.7152) < 1e-9, 'Ceph 200 MiB/s is 209.7 MB/s');
  assert.ok(Math.abs((row.limit?.value ?? 0) - (600 * 1.048576) / 3) < 1e-9);
  assert.equal(row.limit?.name, 'seq write / 3');
  assert.ok(Math.abs((row.vsCeph ?? 0) - 60 / 209.7152) < 1e-9);
  assert.equal(row.goalMet, false, '60 of a 209.7 MB/s limit is below half');
});

test('aggregate: Ceph measured in the run wins over the anchor; a limit the benchmark measured wins over the machine', () => {
  const baselines: Record<string, Baseline> = { 'objects|write 4 KiB c16': { ceph: { section: 'rados', test: 'w', unit: 'ops/s' }, limit: { machine: 'rand write' } } };
  const anchor = new Map([['rados|w|ops/s', [1000]]]);
  const figures = [fig({ benchmark: 'machine', workload: 'rand write', unit: 'IOPS', metric: 'IOPS', value: 9000 }), fig({ value: 400, ceph: 100, limit: 800, limitName: 'own', goal: '>= 2x Ceph' })];
  const row = aggregate(figures, anchor, baselines)[1];
  assert.equal(row?.ceph?.source, 'measured in this run');
  assert.equal(row?.ceph?.median, 100);
  assert.deepEqual(row?.limit, { value: 800, name: 'own' });
  assert.equal(row?.vsCeph, 4);
  assert.equal(row?.vsLimit, 0.5);
  assert.equal(row?.goalMet, true);
});

test('aggregate: for lower-is-better figures the Ceph ratio is Ceph / Shoal and no fraction of a limit is given', () => {
  const baselines: Record<string, Baseline> = { 's3|LIST 10000 keys': { ceph: { section: 's3', test: 'LIST', unit: 's' } } };
  const rows = aggregate([fig({ benchmark: 's3', workload: 'LIST 10000 keys', metric: 'seconds', unit: 's', higherIsBetter: false, value: 0.5 })], new Map([['s3|LIST|s', [1]]]), baselines);
  assert.equal(rows[0]?.vsCeph, 2);
  assert.equal(rows[0]?.vsLimit, undefined);
});

test('aggregate: an anchor row of seconds for N things compares as things per second', () => {
  const baselines: Record<string, Baseline> = { 'fs|create': { ceph: { section: 'cephfs', test: 'create 10k', unit: 's', items: 10_000 } } };
  const anchor = new Map([['cephfs|create 10k|s', [10, 12.5, 20]]]);
  const [row] = aggregate([fig({ benchmark: 'fs', workload: 'create', metric: 'files/s', unit: 'files/s', value: 200 })], anchor, baselines);
  assert.deepEqual(row?.ceph, { median: 800, min: 500, max: 1000, values: [1000, 800, 500], source: 'recorded anchor' });
  assert.equal(row?.vsCeph, 0.25);
});

test('goalMet judges ">= Nx Ceph", ">= Nx limit" and "<= Nx"; other text is not judged', () => {
  const shoal = spread([2.5]);
  assert.equal(goalMet({ goal: '>= 2x Ceph', vsCeph: 2, shoal }), true);
  assert.equal(goalMet({ goal: '>= 2x Ceph', vsCeph: 1.99, shoal }), false);
  assert.equal(goalMet({ goal: '>= 0.5x limit', vsLimit: 0.6, shoal }), true);
  assert.equal(goalMet({ goal: '<= 3x', shoal }), true);
  assert.equal(goalMet({ goal: '<= 2x', shoal }), false);
  assert.equal(goalMet({ goal: '>= 2x Ceph', shoal }), undefined, 'no Ceph figure: cannot judge');
  assert.equal(goalMet({ goal: 'fast', shoal }), undefined);
});

const sampleReport = (): Report => {
  const rows = aggregate(
    [
      fig({ value: 900, goal: '>= 2x Ceph' }),
      fig({ value: 1100, goal: '>= 2x Ceph' }),
      fig({ benchmark: 's3', workload: 'GET <4 KiB> & co', value: 10, higherIsBetter: false, unit: 's', metric: 's' }),
    ],
    new Map([['rados|write 4K t16|ops/s', [761]]]),
  );
  return { date: '2026-11-23', command: 'npm run bench -- report', machine: ['2 cores'], reps: 2, phaseSeconds: 5, budgetSeconds: 1200, elapsedSeconds: 600, rows, memory: [{ benchmark: 'objects', daemon: 'osd.0', peakRssMiB: 310 }, { benchmark: 'objects', daemon: 'mon.a', peakRssMiB: 90 }], osdGoalMiB: 300, notes: ['busy machine'] };
};

test('renderMarkdown: one table row per workload with median (min–max), ratio, goal status and the memory table', () => {
  const md = renderMarkdown(sampleReport(), 'x.svg');
  assert.match(md, /\| objects \| write 4 KiB c16 \| ops\/s \| 1,000 \(900–1,100\) \| 761 ᵃ \| 1\.31× \| – \| – \| >= 2x Ceph: \*\*NOT met\*\* \|/);
  assert.match(md, /\| s3 \| GET <4 KiB> & co \| s \(lower is better\) \| 10\.0 \|/);
  assert.match(md, /\| objects \| osd\.0 \| 310 \| \*\*NOT met\*\* \|/);
  assert.match(md, /\| objects \| mon\.a \| 90 \| {2}\|/);
  assert.match(md, /took 10\.0 min \(budget 20 min\)/);
  assert.match(md, /- busy machine/);
  assert.match(md, /!\[Shoal vs Ceph vs limit\]\(x\.svg\)/);
});

test('gaps: every missed goal and OSD memory over the goal is listed with what the CPU was doing', () => {
  const report = sampleReport();
  const saturated = { busy: 0.93, steal: 0.04, msPerOp: 2.61, shares: { osd: 0.8, bench: 0.15, other: 0.05 } };
  report.rows[0] = { ...(report.rows[0] as Report['rows'][number]), cpu: saturated };
  const lines = gapLines(report);
  assert.equal(lines.length, 2);
  assert.match(lines[0] ?? '', /objects · write 4 KiB c16\*\*: 1,000 ops\/s \(1\.31× Ceph\), goal >= 2x Ceph\. CPU-bound: the cores were 93% busy \(and 4% taken by the hypervisor\), 2\.61 ms of CPU per operation; busy time by process: osd 80%, bench 15%, other 5%/);
  assert.match(lines[1] ?? '', /objects · osd\.0 peak RSS\*\*: 310 MiB, goal ≤ 300 MiB/);
  assert.match(cpuCause({ busy: 0.4, steal: 0, shares: { osd: 1 } }), /^Not CPU-bound: the cores were 40% busy; busy time by process: osd 100%/);
  assert.match(cpuCause(undefined), /not measured/);
  assert.match(renderMarkdown(report, 'x.svg'), /#### Goals missed[\s\S]*CPU-bound: the cores were 93% busy/);
  report.rows = report.rows.filter((r) => r.goalMet !== false);
  report.memory = [];
  assert.match(renderMarkdown(report, 'x.svg'), /Every goal is met\./);
});

test('medianCpu: medians per field, shares summing to 1; aggregate attaches it to the row', () => {
  const a = { busy: 0.9, steal: 0, msPerOp: 2, shares: { osd: 0.8, other: 0.2 } };
  const b = { busy: 0.7, steal: 0.1, msPerOp: 4, shares: { osd: 0.6, bench: 0.4 } };
  const c = { busy: 0.8, steal: 0, shares: { osd: 0.7, other: 0.3 } };
  const m = medianCpu([a, b, c]);
  assert.equal(m?.busy, 0.8);
  assert.equal(m?.msPerOp, 3);
  const sum = Object.values(m?.shares ?? {}).reduce((x, y) => x + y, 0);
  assert.ok(Math.abs(sum - 1) < 1e-9);
  assert.equal(medianCpu([]), undefined);
  const rows = aggregate([fig({ cpu: a }), fig({ cpu: b }), fig({})], new Map());
  assert.equal(rows[0]?.cpu?.busy, 0.8);
});

test('cpu meter: parses /proc/stat and /proc/PID/stat, and sees this process spin', () => {
  assert.deepEqual(parseProcStat('cpu  100 5 50 800 20 3 2 10 0 0\ncpu0 1 2 3 4\n'), { busy: 160, steal: 10, total: 990 });
  assert.equal(parseProcStat('intr 1 2 3'), undefined);
  assert.equal(parseProcessTicks('42 (node (x) y) S 1 2 3 4 5 6 7 8 9 10 120 30 0 0'), 150);
  const meter = startCpuMeter();
  const until = performance.now() + 300;
  while (performance.now() < until) Math.sqrt(Math.random());
  const use = meter.stop(10);
  assert.ok(use, '/proc is readable on Linux');
  assert.ok(use.busy > 0 && use.busy <= 1, `busy ${use.busy}`);
  assert.ok((use.shares['bench'] ?? 0) > 0.2, `this process's share ${JSON.stringify(use.shares)}`);
  assert.ok((use.msPerOp ?? 0) > 0);
});

test('renderSvg: well-formed, escaped labels, a bar per figure scaled within its group, a whisker for the spread', () => {
  const svg = renderSvg(sampleReport().rows, 'title & <more>');
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  assert.ok(svg.includes('title &amp; &lt;more&gt;'));
  assert.ok(svg.includes('s3: GET &lt;4 KiB&gt; &amp; co (s, lower is better)'));
  assert.ok(!/<text[^>]*>[^<]*&(?!amp;|lt;|gt;|quot;)/.test(svg), 'no raw & in text');
  const widths = [...svg.matchAll(/<rect x="440" y="[\d.]+" width="([\d.]+)" height="11"/g)].map((m) => Number(m[1]));
  // Group 1: Shoal 1000 (max 1100 sets the scale) and Ceph 761; group 2: Shoal alone at full width.
  assert.deepEqual(widths, [Number(((1000 / 1100) * 440).toFixed(1)), Number(((761 / 1100) * 440).toFixed(1)), 440]);
  assert.equal((svg.match(/<line /g) ?? []).length, 1, 'one whisker: only the first row has more than one value');
});

test('replaceSection swaps the text between the markers and refuses a README without them', () => {
  const readme = 'a\n<!-- s -->\nold\n<!-- e -->\nb\n';
  assert.equal(replaceSection(readme, '<!-- s -->', '<!-- e -->', 'new\n'), 'a\n<!-- s -->\nnew\n<!-- e -->\nb\n');
  assert.throws(() => replaceSection('nothing', '<!-- s -->', '<!-- e -->', 'x'), /lacks the markers/);
});

test('record appends one JSON line per figure to SHOAL_REPORT_OUT, and readFigures reads them back', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-results-'));
  const out = join(dir, 'f.jsonl');
  const previous = process.env['SHOAL_REPORT_OUT'];
  try {
    process.env['SHOAL_REPORT_OUT'] = out;
    const { record } = await import('../../../benchmarks/lib/results.js');
    record(fig({ value: 5 }));
    record(fig({ value: Number.NaN }));
    record(fig({ value: 7, workload: 'read' }));
    assert.deepEqual(readFigures(out).map((f) => [f.workload, f.value]), [['write 4 KiB c16', 5], ['read', 7]]);
    appendFileSync(out, '{broken\n');
    assert.throws(() => readFigures(out));
    assert.deepEqual(readFigures(join(dir, 'missing.jsonl')), []);
  } finally {
    if (previous === undefined) delete process.env['SHOAL_REPORT_OUT'];
    else process.env['SHOAL_REPORT_OUT'] = previous;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every Ceph row that baselines.ts names exists in the recorded anchor', async (t) => {
  const { baselines } = await import('../../../benchmarks/lib/baselines.js');
  const { existsSync, readFileSync } = await import('node:fs');
  const path = new URL('../../../../../shared/anchors/ceph/results/results.tsv', import.meta.url).pathname;
  if (!existsSync(path)) {
    t.skip(`the Ceph anchor is not on this machine (${path})`);
    return;
  }
  const anchor = parseAnchor(readFileSync(path, 'utf8'));
  for (const [key, base] of Object.entries(baselines)) {
    if (!base.ceph) continue;
    assert.ok(anchor.has(`${base.ceph.section}|${base.ceph.test}|${base.ceph.unit}`), `${key}: no anchor row ${base.ceph.section} / ${base.ceph.test} / ${base.ceph.unit}`);
  }
});

test('daemonPids finds the pid files of the cluster dirs below a dir; peakRssMiB reads VmHWM of a live process', async () => {
  const { daemonPids, peakRssMiB } = await import('../../../benchmarks/lib/daemon-memory.js');
  const { mkdirSync, writeFileSync } = await import('node:fs');
  const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-pids-'));
  try {
    mkdirSync(join(dir, 'cluster-1'));
    writeFileSync(join(dir, 'cluster-1', 'osd.0.pid'), `${process.pid}\n`);
    writeFileSync(join(dir, 'cluster-1', 'osd.0.log'), 'not a pid file');
    writeFileSync(join(dir, 'cluster-1', 'bad.pid'), 'x');
    writeFileSync(join(dir, 'top.pid'), '1');
    assert.deepEqual([...daemonPids(dir)], [['osd.0', process.pid]]);
    assert.deepEqual([...daemonPids(join(dir, 'missing'))], []);
    const peak = peakRssMiB(process.pid);
    assert.ok(peak !== undefined && peak > 1 && peak >= process.memoryUsage().rss / 2 ** 20 - 1, `VmHWM ${peak} MiB covers the current RSS`);
    assert.equal(peakRssMiB(2 ** 22 + 12345), undefined, 'no such process');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
