/**
 * The pure part of the performance report: figures of several repetitions → rows with median and spread, Ceph's
 * figure and the machine limit beside each, the ratios, goal checks, and the markdown and SVG renderings.
 * No I/O here, so all of it is unit-tested (test/unit/bench).
 */
import { baselines as defaultBaselines, convert, type Baseline } from './baselines.js';
import type { CpuUse } from './cpu.js';
import type { Figure } from './results.js';

export interface Spread {
  median: number;
  min: number;
  max: number;
  values: number[];
}

export interface Row {
  benchmark: string;
  workload: string;
  metric: string;
  unit: string;
  higherIsBetter: boolean;
  shoal: Spread;
  ceph?: Spread & { source: 'measured in this run' | 'recorded anchor' };
  limit?: { value: number; name: string };
  goal?: string;
  /** How many times better than Ceph (> 1: Shoal is better, whichever way the metric points). */
  vsCeph?: number;
  /** Fraction of the limit reached (higher-is-better figures only). */
  vsLimit?: number;
  /** Whether the goal is met; undefined when there is no goal or it cannot be judged. */
  goalMet?: boolean;
  /** The machine's CPU use during the phase: medians over the repetitions that measured it. */
  cpu?: CpuUse;
}

export interface DaemonMemory {
  benchmark: string;
  daemon: string;
  peakRssMiB: number;
}

export interface Report {
  date: string;
  command: string;
  machine: string[];
  reps: number;
  phaseSeconds: number;
  budgetSeconds: number;
  elapsedSeconds: number;
  rows: Row[];
  memory: DaemonMemory[];
  osdGoalMiB: number;
  notes: string[];
}

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function spread(values: number[]): Spread {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), values };
}

/** Judges goals of the forms `>= Nx Ceph`, `>= Nx limit` and `<= Nx` (the figure itself). */
export function goalMet(row: Pick<Row, 'goal' | 'vsCeph' | 'vsLimit' | 'shoal'>): boolean | undefined {
  const match = /^(>=|<=)\s*([\d.]+)x(?:\s+(Ceph|limit))?$/.exec(row.goal?.trim() ?? '');
  if (!match) return undefined;
  const bound = Number(match[2]);
  const subject = match[3] === 'Ceph' ? row.vsCeph : match[3] === 'limit' ? row.vsLimit : row.shoal.median;
  if (subject === undefined || !Number.isFinite(subject)) return undefined;
  return match[1] === '>=' ? subject >= bound : subject <= bound;
}

/**
 * Groups figures by benchmark, workload and metric (in order of first appearance) and attaches Ceph and the limit:
 * a Ceph figure measured in this run wins over the recorded anchor; a limit the benchmark measured wins over the
 * machine limit named in `baselines`.
 */
export function aggregate(figures: Figure[], anchor: Map<string, number[]>, baselines: Record<string, Baseline> = defaultBaselines): Row[] {
  const groups = new Map<string, Figure[]>();
  for (const f of figures) {
    const key = `${f.benchmark}|${f.workload}|${f.metric}`;
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  const machineMedian = new Map<string, { value: number; unit: string }>();
  for (const group of groups.values()) {
    const first = group[0] as Figure;
    if (first.benchmark === 'machine') machineMedian.set(first.workload, { value: median(group.map((f) => f.value)), unit: first.unit });
  }
  const rows: Row[] = [];
  for (const group of groups.values()) {
    const first = group[0] as Figure;
    const base = baselines[`${first.benchmark}|${first.workload}`];
    const row: Row = { benchmark: first.benchmark, workload: first.workload, metric: first.metric, unit: first.unit, higherIsBetter: first.higherIsBetter, shoal: spread(group.map((f) => f.value)) };
    if (first.goal) row.goal = first.goal;
    const measuredCeph = group.flatMap((f) => (f.ceph === undefined ? [] : [f.ceph]));
    if (measuredCeph.length > 0) row.ceph = { ...spread(measuredCeph), source: 'measured in this run' };
    else if (base?.ceph) {
      const { section, test, unit, realUnit, items } = base.ceph;
      const recorded = anchor.get(`${section}|${test}|${unit}`);
      const value = (v: number) => (items === undefined ? convert(v, realUnit ?? unit, first.unit) : items / v);
      if (recorded && recorded.length > 0) row.ceph = { ...spread(recorded.map(value)), source: 'recorded anchor' };
    }
    const ownLimits = group.flatMap((f) => (f.limit === undefined ? [] : [f.limit]));
    if (ownLimits.length > 0) row.limit = { value: median(ownLimits), name: first.limitName ?? 'limit measured by the benchmark' };
    else if (base?.limit) {
      const machine = machineMedian.get(base.limit.machine);
      const divide = base.limit.divide ?? 1;
      if (machine) row.limit = { value: convert(machine.value, machine.unit, first.unit) / divide, name: divide === 1 ? base.limit.machine : `${base.limit.machine} / ${divide}` };
    }
    if (row.ceph && row.ceph.median > 0 && row.shoal.median > 0) row.vsCeph = row.higherIsBetter ? row.shoal.median / row.ceph.median : row.ceph.median / row.shoal.median;
    if (row.limit && row.limit.value > 0 && row.higherIsBetter) row.vsLimit = row.shoal.median / row.limit.value;
    const met = goalMet(row);
    if (met !== undefined) row.goalMet = met;
    const cpu = medianCpu(group.flatMap((f) => (f.cpu ? [f.cpu] : [])));
    if (cpu) row.cpu = cpu;
    rows.push(row);
  }
  return rows;
}

/** Per field, the median of the repetitions' CPU use (shares renormalised to sum to 1). */
export function medianCpu(uses: CpuUse[]): CpuUse | undefined {
  if (uses.length === 0) return undefined;
  const groups = [...new Set(uses.flatMap((u) => Object.keys(u.shares)))];
  const raw = Object.fromEntries(groups.map((g) => [g, median(uses.map((u) => u.shares[g] ?? 0))]));
  const sum = Object.values(raw).reduce((a, b) => a + b, 0);
  const shares = Object.fromEntries(Object.entries(raw).map(([g, v]) => [g, sum > 0 ? v / sum : 0]));
  const perOp = uses.flatMap((u) => (u.msPerOp === undefined ? [] : [u.msPerOp]));
  return { busy: median(uses.map((u) => u.busy)), steal: median(uses.map((u) => u.steal)), shares, ...(perOp.length > 0 ? { msPerOp: median(perOp) } : {}) };
}

/** Busy share of the cores at or above which a phase counts as CPU-bound. */
export const cpuBoundBusy = 0.85;

/** What the CPU measurement says about a missed goal: saturated cores (a cost to cut) or idle ones (a wait). */
export function cpuCause(cpu: CpuUse | undefined): string {
  if (!cpu) return 'CPU use was not measured in this phase.';
  const pct = (x: number) => `${Math.round(x * 100)}%`;
  const shares = Object.entries(cpu.shares)
    .filter(([, v]) => v >= 0.005)
    .sort((a, b) => b[1] - a[1])
    .map(([g, v]) => `${g} ${pct(v)}`)
    .join(', ');
  const use = `the cores were ${pct(cpu.busy)} busy${cpu.steal >= 0.01 ? ` (and ${pct(cpu.steal)} taken by the hypervisor)` : ''}${cpu.msPerOp === undefined ? '' : `, ${cpu.msPerOp.toFixed(2)} ms of CPU per operation`}; busy time by process: ${shares}`;
  return cpu.busy + cpu.steal >= cpuBoundBusy
    ? `CPU-bound: ${use}. Only less CPU per operation raises it.`
    : `Not CPU-bound: ${use}. The phase waits (on fsyncs, round trips or the client) more than it computes.`;
}

/** Whether an OSD's peak RSS meets the goal; undefined for other daemons (no goal). */
export function osdMemoryMet(m: DaemonMemory, goalMiB: number): boolean | undefined {
  return m.daemon.startsWith('osd.') ? m.peakRssMiB <= goalMiB : undefined;
}

/** One line per missed goal (figures and OSD memory), each with its measured cause. */
export function gapLines(report: Pick<Report, 'rows' | 'memory' | 'osdGoalMiB'>): string[] {
  const lines: string[] = [];
  for (const row of report.rows) {
    if (row.goalMet !== false) continue;
    const against = row.vsCeph !== undefined && /Ceph/.test(row.goal ?? '') ? ` (${row.vsCeph.toFixed(2)}× Ceph)` : row.vsLimit !== undefined && /limit/.test(row.goal ?? '') ? ` (${row.vsLimit.toFixed(2)} of the limit)` : '';
    lines.push(`- **${row.benchmark} · ${row.workload}**: ${formatNumber(row.shoal.median)} ${row.unit}${against}, goal ${row.goal}. ${cpuCause(row.cpu)}`);
  }
  for (const m of report.memory) {
    if (osdMemoryMet(m, report.osdGoalMiB) === false) lines.push(`- **${m.benchmark} · ${m.daemon} peak RSS**: ${m.peakRssMiB.toFixed(0)} MiB, goal ≤ ${report.osdGoalMiB} MiB.`);
  }
  return lines;
}

/** A figure with about three significant digits. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

function spreadText(s: Spread): string {
  return s.values.length > 1 ? `${formatNumber(s.median)} (${formatNumber(s.min)}–${formatNumber(s.max)})` : formatNumber(s.median);
}

function ratioText(ratio: number | undefined): string {
  return ratio === undefined ? '–' : `${ratio.toFixed(2)}×`;
}

function goalText(row: Row): string {
  if (!row.goal) return '';
  return `${row.goal}: ${row.goalMet === undefined ? 'not judged' : row.goalMet ? 'met' : '**NOT met**'}`;
}

export function renderMarkdown(report: Report, svgName: string): string {
  const lines: string[] = [];
  lines.push(`### Performance report ${report.date}`, '');
  lines.push(`Command: \`${report.command}\` — ${report.reps} repetition(s) of every benchmark, each in its own process, ${report.phaseSeconds} s per timed phase; took ${(report.elapsedSeconds / 60).toFixed(1)} min (budget ${(report.budgetSeconds / 60).toFixed(0)} min).`, '');
  lines.push('Machine: ' + report.machine.join('; ') + '.', '');
  for (const note of report.notes) lines.push(`- ${note}`);
  if (report.notes.length > 0) lines.push('');
  lines.push('Values: median (min–max over the repetitions). "× Ceph" > 1 means Shoal is better (for lower-is-better figures it is Ceph ÷ Shoal). "of limit" is the median over the machine limit measured in the same run. For the `machine` rows the Ceph column is the same fio/iperf3 line of the Ceph anchor run (how the machine measured then).', '');
  lines.push('| benchmark | workload | unit | Shoal | Ceph | × Ceph | limit | of limit | goal |');
  lines.push('|---|---|---|---|---|---|---|---|---|');
  for (const row of report.rows) {
    const unit = `${row.unit}${row.higherIsBetter ? '' : ' (lower is better)'}`;
    const ceph = row.ceph ? `${spreadText(row.ceph)}${row.ceph.source === 'recorded anchor' ? ' ᵃ' : ''}` : '–';
    const limit = row.limit ? `${formatNumber(row.limit.value)} (${row.limit.name})` : '–';
    lines.push(`| ${row.benchmark} | ${row.workload} | ${unit} | ${spreadText(row.shoal)} | ${ceph} | ${ratioText(row.vsCeph)} | ${limit} | ${row.vsLimit === undefined ? '–' : row.vsLimit.toFixed(2)} | ${goalText(row)} |`);
  }
  lines.push('', 'ᵃ Ceph 16.2.15 as recorded on this machine in ../shared/anchors/ceph/RESULTS.md (median of 3), not measured in this run.', '');
  if (report.memory.length > 0) {
    lines.push(`Peak RSS (VmHWM) of each daemon under the report's load (goal: ≤ ${report.osdGoalMiB} MiB per OSD at default settings):`, '');
    lines.push('| benchmark | daemon | peak RSS MiB | goal |', '|---|---|---|---|');
    for (const m of report.memory) {
      const met = osdMemoryMet(m, report.osdGoalMiB);
      const goal = met === undefined ? '' : met ? 'met' : '**NOT met**';
      lines.push(`| ${m.benchmark} | ${m.daemon} | ${m.peakRssMiB.toFixed(0)} | ${goal} |`);
    }
    lines.push('');
  }
  const gaps = gapLines(report);
  lines.push('#### Goals missed, and what the CPU was doing meanwhile', '');
  if (gaps.length === 0) lines.push('Every goal is met.');
  else {
    lines.push(`For each phase the machine's CPU was sampled from /proc (${Math.round(cpuBoundBusy * 100)}% busy or more counts as CPU-bound); where that CPU goes inside the processes is profiled in benchmarks/README.md ("Where the CPU goes").`, '');
    lines.push(...gaps);
  }
  lines.push('');
  lines.push(`![Shoal vs Ceph vs limit](${svgName})`, '');
  return lines.join('\n');
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * A horizontal bar chart: per workload a group of up to three bars (Shoal with its min–max whisker, Ceph, limit),
 * each group scaled to its own largest value, since the units differ between workloads.
 */
export function renderSvg(rows: Row[], title: string): string {
  const width = 1040;
  const labelWidth = 440;
  const barMax = 440;
  const barHeight = 11;
  const groupGap = 10;
  const top = 48;
  const colors = { shoal: '#1f6fb4', ceph: '#c8372d', limit: '#8c8c8c' };
  const parts: string[] = [];
  let y = top;
  for (const row of rows) {
    // The machine's own rows compare this run with the anchor run's measurement of the same machine.
    const machine = row.benchmark === 'machine';
    const bars: { kind: keyof typeof colors; value: number; text: string }[] = [{ kind: 'shoal', value: row.shoal.median, text: `${machine ? 'this run' : 'Shoal'} ${formatNumber(row.shoal.median)}` }];
    if (row.ceph) bars.push({ kind: 'ceph', value: row.ceph.median, text: `${machine ? 'Ceph anchor run' : 'Ceph'} ${formatNumber(row.ceph.median)}${row.ceph.source === 'recorded anchor' ? ' (recorded)' : ''}` });
    if (row.limit) bars.push({ kind: 'limit', value: row.limit.value, text: `limit ${formatNumber(row.limit.value)}` });
    const scaleMax = Math.max(...bars.map((b) => b.value), row.shoal.max);
    const scale = (v: number) => (scaleMax > 0 && Number.isFinite(v) ? (Math.max(0, v) / scaleMax) * barMax : 0);
    const groupHeight = bars.length * (barHeight + 2);
    const label = `${row.benchmark}: ${row.workload} (${row.unit}${row.higherIsBetter ? '' : ', lower is better'})`;
    parts.push(`<text x="${labelWidth - 8}" y="${y + groupHeight / 2 + 4}" text-anchor="end">${escapeXml(label)}</text>`);
    bars.forEach((bar, i) => {
      const by = y + i * (barHeight + 2);
      const w = scale(bar.value);
      parts.push(`<rect x="${labelWidth}" y="${by}" width="${w.toFixed(1)}" height="${barHeight}" fill="${colors[bar.kind]}"/>`);
      if (bar.kind === 'shoal' && row.shoal.values.length > 1) {
        const wy = by + barHeight / 2;
        parts.push(`<line x1="${(labelWidth + scale(row.shoal.min)).toFixed(1)}" y1="${wy}" x2="${(labelWidth + scale(row.shoal.max)).toFixed(1)}" y2="${wy}" stroke="#000" stroke-width="1.5"/>`);
      }
      parts.push(`<text x="${(labelWidth + Math.max(w, scale(bar.kind === 'shoal' ? row.shoal.max : 0)) + 4).toFixed(1)}" y="${by + barHeight - 1}" font-size="10">${escapeXml(bar.text)}</text>`);
    });
    y += groupHeight + groupGap;
  }
  const height = y + 10;
  const legend = (['shoal', 'ceph', 'limit'] as const)
    .map((kind, i) => `<rect x="${labelWidth + i * 120}" y="22" width="12" height="12" fill="${colors[kind]}"/><text x="${labelWidth + i * 120 + 16}" y="32">${kind === 'shoal' ? 'Shoal (median, min–max)' : kind === 'ceph' ? 'Ceph' : 'machine limit'}</text>`)
    .join('');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="8" y="16" font-size="13" font-weight="bold">${escapeXml(title)}</text>`,
    legend,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

/** Replaces the text between the two marker lines of `readme` (markers kept); throws when they are missing. */
export function replaceSection(readme: string, start: string, end: string, body: string): string {
  const from = readme.indexOf(start);
  const to = readme.indexOf(end);
  if (from < 0 || to < from) throw new Error(`README.md lacks the markers ${start} … ${end}`);
  return `${readme.slice(0, from + start.length)}\n${body.trim()}\n${readme.slice(to)}`;
}
