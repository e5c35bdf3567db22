/**
 * `npm run bench -- report`: the performance report. Runs every front-end benchmark (objects, s3, block, fs when
 * present, erasure, recovery) SHOAL_REPORT_REPS times (default 3), each run in its own child process so a crash or a
 * leak in one does not touch the next; measures the machine's limits (fio on a plain file on the same disk, loopback
 * TCP) in every repetition; samples the peak RSS of every daemon; then writes benchmarks/results/<date>.json, .md and
 * .svg and rewrites the performance section of README.md. Ceph's figures come from the anchor run recorded in
 * ../shared/anchors/ceph, or are measured in this run when an endpoint is given (SHOAL_REPORT_CEPH_S3 and its keys;
 * SHOAL_BENCH_CEPH_RBD=POOL/IMAGE for block).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineWorkloads, parseAnchor } from './lib/baselines.js';
import { runFio } from './lib/fio.js';
import { aggregate, renderMarkdown, renderSvg, replaceSection, type DaemonMemory, type Report } from './lib/report-core.js';
import { readFigures, type Figure } from './lib/results.js';
import { runS3Load } from './lib/s3-load.js';
import { daemonPids, peakRssMiB } from './lib/daemon-memory.js';

const reps = Number(process.env['SHOAL_REPORT_REPS'] ?? 3);
const phaseSeconds = Number(process.env['SHOAL_BENCH_SECONDS'] ?? 5);
/** A run is not started when the same benchmark's last run would not fit in what is left of the budget. */
const budgetSeconds = Number(process.env['SHOAL_REPORT_BUDGET_MIN'] ?? 25) * 60;
const childTimeoutMs = 8 * 60 * 1000;
const osdGoalMiB = 300;
const sampleEveryMs = 500;

const here = fileURLToPath(new URL('.', import.meta.url));
const repoRoot = join(here, '..', '..');
const anchorDir = join(repoRoot, '..', 'shared', 'anchors', 'ceph');
const wanted = ['objects', 's3', 'block', 'fs', 'erasure', 'recovery'];
const readmeStart = '<!-- performance-report:start -->';
const readmeEnd = '<!-- performance-report:end -->';

function log(line: string): void {
  process.stdout.write(`[report] ${line}\n`);
}

/** The benchmarks to run: those of `wanted` (or of SHOAL_REPORT_ONLY=a,b) that are built. */
function benchmarkNames(): string[] {
  const only = process.env['SHOAL_REPORT_ONLY']?.split(',').map((s) => s.trim()).filter(Boolean);
  return (only ?? wanted).filter((name) => existsSync(join(here, `${name}.js`)));
}


/** Bytes per second through one loopback TCP connection to a receiver in another process, for `seconds`. */
async function loopbackBytesPerSecond(seconds: number): Promise<number> {
  const receiver = spawn(process.execPath, ['-e', "const s=require('net').createServer(c=>{let n=0;c.on('data',d=>{n+=d.length});c.on('end',()=>c.end(String(n)))});s.listen(0,'127.0.0.1',()=>console.log(s.address().port))"], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      receiver.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      receiver.once('exit', () => reject(new Error('loopback receiver exited')));
    });
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const chunk = Buffer.alloc(1024 * 1024, 0x5a);
    const started = performance.now();
    while (performance.now() - started < seconds * 1000) {
      if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
    }
    socket.end();
    let reply = '';
    socket.on('data', (d: Buffer) => (reply += d.toString()));
    await new Promise((r) => socket.once('close', r));
    return Number(reply) / ((performance.now() - started) / 1000);
  } finally {
    receiver.kill();
  }
}

/** The machine's limits in this repetition, as `machine` figures: fio on a plain file in `dir`, and loopback TCP. */
async function machineLimits(dir: string): Promise<Figure[]> {
  const file = join(dir, 'fio-limit.bin');
  const common = [`--filename=${file}`, '--size=1G', '--direct=1', '--ioengine=libaio', '--name=limit'];
  const timed = ['--time_based', `--runtime=${phaseSeconds}`];
  const mib = (bw: number) => bw / 2 ** 20;
  const figure = (workload: string, value: number, unit: string): Figure => ({ benchmark: 'machine', workload, metric: unit, value, unit, higherIsBetter: true });
  try {
    const fio = (args: string[]) => runFio(args, { timeoutMs: 300_000 }).side;
    const seqWrite = fio([...common, '--bs=1M', '--rw=write', '--iodepth=8']);
    const seqRead = fio([...common, '--bs=1M', '--rw=read', '--iodepth=8']);
    const randWrite = fio([...common, '--bs=4k', '--rw=randwrite', '--iodepth=16', ...timed]);
    const randRead = fio([...common, '--bs=4k', '--rw=randread', '--iodepth=16', ...timed]);
    const loopback = await loopbackBytesPerSecond(phaseSeconds);
    return [
      figure(machineWorkloads.seqWrite, mib(seqWrite.bw_bytes), 'MiB/s'),
      figure(machineWorkloads.seqRead, mib(seqRead.bw_bytes), 'MiB/s'),
      figure(machineWorkloads.randWrite, randWrite.iops, 'IOPS'),
      figure(machineWorkloads.randRead, randRead.iops, 'IOPS'),
      figure(machineWorkloads.loopback, loopback / 1e6, 'MB/s'),
    ];
  } finally {
    rmSync(file, { force: true });
  }
}

/**
 * The fs benchmark's shape in the report, unless set: 64 MiB per fio job (its standalone 512 MiB makes the sequential
 * write phase alone last minutes at today's rates, so three repetitions did not fit the budget), random phases as
 * long as every other timed phase, and 1,000 files for the metadata phase (printed, not recorded). fio reports rates,
 * so the recorded figures keep their meaning.
 */
const fsShape = { SHOAL_BENCH_FS_SIZE: '64M', SHOAL_BENCH_FS_RUNTIME: String(phaseSeconds), SHOAL_BENCH_FS_FILES: '1000' };

/** Runs one benchmark in a child process, sampling its daemons' peak RSS; resolves with its exit code. */
async function runChild(name: string, dir: string, out: string, peaks: Map<string, number>): Promise<number> {
  const child = spawn(process.execPath, [join(here, 'run.js'), name], { stdio: 'inherit', env: { ...fsShape, ...process.env, SHOAL_REPORT_OUT: out, SHOAL_BENCH_DIR: dir, SHOAL_BENCH_SECONDS: String(phaseSeconds) } });
  const seen = new Map<string, number>();
  const sample = () => {
    for (const [daemon, pid] of daemonPids(dir)) {
      seen.set(daemon, pid);
      const peak = peakRssMiB(pid);
      if (peak !== undefined) peaks.set(`${name}|${daemon}`, Math.max(peaks.get(`${name}|${daemon}`) ?? 0, peak));
    }
  };
  const sampler = setInterval(sample, sampleEveryMs);
  const timer = setTimeout(() => {
    log(`${name}: no end after ${childTimeoutMs / 60_000} min; stopping pid ${child.pid} and its daemons`);
    child.kill('SIGKILL');
  }, childTimeoutMs);
  const code = await new Promise<number>((resolve) => child.once('exit', (c, signal) => resolve(c ?? (signal ? 128 : 1))));
  clearInterval(sampler);
  clearTimeout(timer);
  if (code !== 0) {
    // A benchmark that died could not stop its cluster: stop the daemons it started, by the pids their files named.
    for (const [daemon, pid] of seen) {
      if (peakRssMiB(pid) === undefined) continue;
      try {
        process.kill(pid, 'SIGKILL');
        log(`${name}: stopped leftover ${daemon} (pid ${pid})`);
      } catch {
        // Already gone.
      }
    }
  }
  return code;
}

/** Ceph radosgw measured in this run with the same S3 load, when SHOAL_REPORT_CEPH_S3 names its endpoint. */
async function cephS3(): Promise<Map<string, number> | undefined> {
  const endpoint = process.env['SHOAL_REPORT_CEPH_S3'];
  if (!endpoint) return undefined;
  const accessKey = process.env['SHOAL_REPORT_CEPH_S3_ACCESS_KEY'] ?? 'ANCHORTESTACCESSKEY1';
  const secretKey = process.env['SHOAL_REPORT_CEPH_S3_SECRET_KEY'] ?? 'anchorTestSecretKey0000000000000000000001';
  const report = await runS3Load({ endpoint, accessKey, secretKey, region: 'us-east-1', seconds: phaseSeconds, print: (l) => log(`ceph s3 ${l}`) });
  const out = new Map<string, number>();
  for (const p of report.phases) {
    if (p.errors) continue;
    out.set(`${p.name}|ops/s`, p.ops / p.seconds);
    out.set(`${p.name}|MB/s`, p.bytes / p.seconds / 1e6);
  }
  if (report.list && !report.list.errors) out.set(`LIST ${report.list.keys} keys|seconds`, report.list.medianSeconds);
  return out;
}

function machineDescription(dir: string): string[] {
  const cpu = cpus();
  const df = spawnSync('df', ['-T', dir], { encoding: 'utf8' }).stdout.trim().split('\n')[1]?.split(/\s+/) ?? [];
  const fioVersion = spawnSync('fio', ['--version'], { encoding: 'utf8' }).stdout.trim();
  return [
    `${cpu.length} cores (${cpu[0]?.model ?? 'unknown CPU'})`,
    `${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM`,
    `kernel ${release()}`,
    `node ${process.version}`,
    fioVersion,
    `bench dir on ${df[0] ?? '?'} (${df[1] ?? '?'})`,
  ];
}

interface Progress {
  startedAt: Date;
  machine: string[];
  figures: Figure[];
  peaks: Map<string, number>;
  notes: string[];
  loadAtStart: number;
  runsDone: number;
  runsPlanned: number;
}

/** Writes the results files and the README section from what has been measured so far (after every run). */
function writeOutputs(p: Progress, elapsedSeconds: number, final: boolean): string {
  const anchorPath = join(anchorDir, 'results', 'results.tsv');
  const anchor = existsSync(anchorPath) ? parseAnchor(readFileSync(anchorPath, 'utf8')) : new Map<string, number[]>();
  const rows = aggregate(p.figures, anchor);
  const memory: DaemonMemory[] = [...p.peaks].map(([key, peak]) => {
    const [benchmark = '', daemon = ''] = key.split('|');
    return { benchmark, daemon, peakRssMiB: peak };
  });
  const loadNow = loadavg()[0] ?? 0;
  const cephMeasured = [...(process.env['SHOAL_REPORT_CEPH_S3'] ? ['S3 (radosgw at SHOAL_REPORT_CEPH_S3)'] : []), ...(process.env['SHOAL_BENCH_CEPH_RBD'] ? [`block (RBD image ${process.env['SHOAL_BENCH_CEPH_RBD']})`] : []), ...(process.env['SHOAL_BENCH_CEPH_MOUNT'] ? [`files (ceph-fuse mount ${process.env['SHOAL_BENCH_CEPH_MOUNT']})`] : [])];
  const notes = [
    ...(p.runsDone < p.runsPlanned ? [`${p.runsDone} of ${p.runsPlanned} benchmark runs done${final ? '' : ' so far (the report is still running)'}.`] : []),
    `Load average (1 min) ${p.loadAtStart.toFixed(1)} at the start and ${loadNow.toFixed(1)} at the end on ${cpus().length} cores${Math.max(p.loadAtStart, loadNow) > cpus().length * 0.5 ? ': the machine was shared with other work during this run, so these figures are lower and noisier than on a quiet machine' : ''}.`,
    cephMeasured.length > 0 ? `Ceph measured in this run for: ${cephMeasured.join(', ')}; other Ceph figures are the recorded anchor.` : `Ceph figures are the anchor recorded on this machine (${existsSync(anchorPath) ? '../shared/anchors/ceph/results/results.tsv' : 'not found: no Ceph column'}), not measured in this run.`,
    ...p.notes,
  ];
  const date = p.startedAt.toISOString().slice(0, 10);
  const settings = ['SHOAL_REPORT_REPS', 'SHOAL_BENCH_SECONDS', 'SHOAL_REPORT_BUDGET_MIN', 'SHOAL_REPORT_ONLY', 'SHOAL_REPORT_CEPH_S3', 'SHOAL_BENCH_CEPH_RBD', 'SHOAL_BENCH_CEPH_MOUNT'].flatMap((v) => (process.env[v] ? [`${v}=${process.env[v]}`] : []));
  const command = [...settings, 'npm run bench -- report'].join(' ');
  const report: Report = { date, command, machine: p.machine, reps, phaseSeconds, budgetSeconds, elapsedSeconds, rows, memory, osdGoalMiB, notes };
  const resultsDir = join(repoRoot, 'benchmarks', 'results');
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, `${date}.json`), `${JSON.stringify({ ...report, startedAt: p.startedAt.toISOString(), figures: p.figures }, null, 2)}\n`);
  const markdown = renderMarkdown(report, `${date}.svg`);
  writeFileSync(join(resultsDir, `${date}.md`), markdown);
  writeFileSync(join(resultsDir, `${date}.svg`), renderSvg(rows, `Shoal vs Ceph vs machine limit, ${date} (${command})`));
  const readmePath = join(repoRoot, 'README.md');
  const readme = readFileSync(readmePath, 'utf8');
  if (readme.includes(readmeStart)) writeFileSync(readmePath, replaceSection(readme, readmeStart, readmeEnd, renderMarkdown(report, `benchmarks/results/${date}.svg`)));
  else log(`README.md has no ${readmeStart} marker: section not updated`);
  return markdown;
}

export async function run(): Promise<void> {
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  if (spawnSync('sh', ['-c', 'command -v fio']).status !== 0) throw new Error('the report needs fio for the machine limits (apt-get install fio)');
  const root = mkdtempSync(join(process.env['SHOAL_BENCH_DIR'] ?? tmpdir(), 'shoal-report-'));
  const names = benchmarkNames();
  const p: Progress = { startedAt: new Date(), machine: machineDescription(root), figures: [], peaks: new Map(), notes: [], loadAtStart: loadavg()[0] ?? 0, runsDone: 0, runsPlanned: reps * (names.length + 1) };
  log(`benchmarks: ${names.join(', ')}; ${reps} repetition(s); ${phaseSeconds} s phases; budget ${budgetSeconds / 60} min; load average at start ${p.loadAtStart.toFixed(1)}`);
  const lastSeconds = new Map<string, number>();
  /** Whether a run like the last one of `name` still fits in the budget (the first run of each always starts). */
  const fits = (name: string, rep: number) => {
    const last = lastSeconds.get(name);
    if (last === undefined || elapsed() + last <= budgetSeconds) return true;
    p.notes.push(`Not run for the budget: ${name} repetition ${rep} (its last run took ${last.toFixed(0)} s, ${(elapsed() / 60).toFixed(1)} min of ${budgetSeconds / 60} were gone).`);
    log(`skipping ${name} rep ${rep}: would overrun the budget`);
    return false;
  };
  try {
    for (let rep = 1; rep <= reps; rep++) {
      let t = performance.now();
      if (fits('machine', rep)) {
        p.figures.push(...(await machineLimits(root)));
        lastSeconds.set('machine', (performance.now() - t) / 1000);
        p.runsDone++;
        log(`rep ${rep}/${reps}: machine limits in ${((performance.now() - t) / 1000).toFixed(0)} s`);
      }
      const ceph = await cephS3().catch((error: unknown) => {
        p.notes.push(`FAILED: Ceph S3 endpoint, rep ${rep}: ${String(error)}`);
        return undefined;
      });
      for (const name of names) {
        if (!fits(name, rep)) continue;
        t = performance.now();
        const dir = join(root, `${name}-${rep}`);
        mkdirSync(dir);
        const out = join(root, `${name}-${rep}.jsonl`);
        log(`rep ${rep}/${reps}: ${name} (elapsed ${(elapsed() / 60).toFixed(1)} min of ${budgetSeconds / 60})`);
        const code = await runChild(name, dir, out, p.peaks);
        const got = readFigures(out);
        if (code !== 0) p.notes.push(`FAILED: ${name}, rep ${rep}: exited with ${code}${got.length ? ' (figures it recorded before are kept)' : ''}`);
        if (name === 's3' && ceph) {
          for (const f of got) {
            const value = ceph.get(`${f.workload}|${f.metric}`);
            if (value !== undefined) f.ceph = value;
          }
        }
        p.figures.push(...got);
        rmSync(dir, { recursive: true, force: true });
        lastSeconds.set(name, (performance.now() - t) / 1000);
        p.runsDone++;
        log(`rep ${rep}/${reps}: ${name} done in ${((performance.now() - t) / 1000).toFixed(0)} s, ${got.length} figures`);
        writeOutputs(p, elapsed(), false);
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  const markdown = writeOutputs(p, elapsed(), true);
  process.stdout.write(`\n${markdown}\n`);
  const date = p.startedAt.toISOString().slice(0, 10);
  log(`wrote benchmarks/results/${date}.json, .md, .svg and the README section; ${(elapsed() / 60).toFixed(1)} min of the ${budgetSeconds / 60} min budget`);
  if (elapsed() > budgetSeconds) log(`OVER BUDGET: ${(elapsed() / 60).toFixed(1)} min > ${budgetSeconds / 60} min`);
  if (p.notes.some((n) => n.startsWith('FAILED'))) process.exitCode = 1;
}
