/**
 * What each report figure is compared with: Ceph's figure for the same workload (from the anchor run recorded in
 * ../shared/anchors/ceph/results/results.tsv, unless the benchmark measured Ceph in the same run) and the machine
 * limit that bounds it (a `machine` figure the report measures in the same run, divided by the copies written).
 * A new benchmark (e.g. fs) adds one line per workload here. Pure: no I/O.
 */

export interface Baseline {
  /**
   * A row of the anchor's results.tsv: section, test and its unit label; `realUnit` when the label is wrong; `items`
   * when the row is the seconds that many things took, compared as things per second.
   */
  ceph?: { section: string; test: string; unit: string; realUnit?: string; items?: number };
  /** A `machine` workload of the report, divided by `divide` (copies of every byte: 3 for size-3 pools). */
  limit?: { machine: string; divide?: number };
}

/** The machine limits the report measures, as `machine` figures (workload names; each is also a row of the report). */
export const machineWorkloads = {
  seqWrite: 'plain file seq write 1 MiB qd8',
  seqRead: 'plain file seq read 1 MiB qd8',
  randWrite: 'plain file rand write 4 KiB qd16',
  randRead: 'plain file rand read 4 KiB qd16',
  loopback: 'loopback TCP, 1 stream',
} as const;

const m = machineWorkloads;

export const baselines: Record<string, Baseline> = {
  // The machine limits themselves, beside the same fio lines of the anchor run (a check that the machine is comparable).
  [`machine|${m.seqWrite}`]: { ceph: { section: 'phys-file', test: 'seqwrite 1M qd8', unit: 'MiB/s' } },
  [`machine|${m.seqRead}`]: { ceph: { section: 'phys-file', test: 'seqread 1M qd8', unit: 'MiB/s' } },
  [`machine|${m.randWrite}`]: { ceph: { section: 'phys-file', test: 'randwrite 4k qd16', unit: 'IOPS' } },
  [`machine|${m.randRead}`]: { ceph: { section: 'phys-file', test: 'randread 4k qd16', unit: 'IOPS' } },
  [`machine|${m.loopback}`]: { ceph: { section: 'phys-net', test: 'iperf3 loopback 1 stream', unit: 'Gbit/s' } },

  // rados bench prints "MB/s" but divides by 2^20 (so does the anchor's label).
  'objects|write 4 KiB c16': { ceph: { section: 'rados', test: 'write 4K t16', unit: 'ops/s' }, limit: { machine: m.randWrite, divide: 3 } },
  'objects|read 4 KiB c16': { limit: { machine: m.randRead } },
  'objects|write 4 MiB c16': { ceph: { section: 'rados', test: 'write 4M t16', unit: 'MB/s', realUnit: 'MiB/s' } },
  'objects|read 4 MiB c16': { ceph: { section: 'rados', test: 'seq read 4M t16', unit: 'MB/s', realUnit: 'MiB/s' }, limit: { machine: m.seqRead } },

  's3|PUT 4 KiB c32': { ceph: { section: 's3', test: '4KiB c32 PUT', unit: 'ops/s' }, limit: { machine: m.randWrite, divide: 3 } },
  's3|GET 4 KiB c32': { ceph: { section: 's3', test: '4KiB c32 GET', unit: 'ops/s' }, limit: { machine: m.randRead } },
  's3|DELETE 4 KiB c32': { ceph: { section: 's3', test: '4KiB c32 DELETE', unit: 'ops/s' } },
  's3|PUT 4 MiB c8': { ceph: { section: 's3', test: '4MiB c8 PUT', unit: 'MB/s' }, limit: { machine: m.seqWrite, divide: 3 } },
  's3|GET 4 MiB c8': { ceph: { section: 's3', test: '4MiB c8 GET', unit: 'MB/s' }, limit: { machine: m.seqRead } },
  's3|DELETE 4 MiB c8': { ceph: { section: 's3', test: '4MiB c8 DELETE', unit: 'ops/s' } },
  's3|LIST 10000 keys': { ceph: { section: 's3', test: 'LIST 10k keys (full, 10 pages)', unit: 's' } },

  'block|seq write 1 MiB qd4': { ceph: { section: 'rbd', test: 'seqwrite 1M qd4', unit: 'MiB/s' }, limit: { machine: m.seqWrite, divide: 3 } },
  'block|seq read 1 MiB qd4': { ceph: { section: 'rbd', test: 'seqread 1M qd4', unit: 'MiB/s' }, limit: { machine: m.seqRead } },
  'block|rand write 4 KiB qd16': { ceph: { section: 'rbd', test: 'randwrite 4k qd16', unit: 'IOPS' }, limit: { machine: m.randWrite, divide: 3 } },
  'block|rand read 4 KiB qd16': { ceph: { section: 'rbd', test: 'randread 4k qd16', unit: 'IOPS' }, limit: { machine: m.randRead } },

  'fs|seq write 1 MiB x4': { ceph: { section: 'cephfs', test: 'seqwrite 1M psync x4', unit: 'MiB/s' }, limit: { machine: m.seqWrite, divide: 3 } },
  'fs|seq read 1 MiB x4': { ceph: { section: 'cephfs', test: 'seqread 1M psync x4', unit: 'MiB/s' }, limit: { machine: m.seqRead } },
  'fs|rand write 4 KiB x4': { ceph: { section: 'cephfs', test: 'randwrite 4k psync x4', unit: 'IOPS' }, limit: { machine: m.randWrite, divide: 3 } },
  'fs|rand read 4 KiB x4': { ceph: { section: 'cephfs', test: 'randread 4k psync x4', unit: 'IOPS' }, limit: { machine: m.randRead } },
  'fs|create empty files (xargs touch)': { ceph: { section: 'cephfs', test: 'create 10k empty files', unit: 's', items: 10_000 } },
  'fs|ls -l of a directory': { ceph: { section: 'cephfs', test: 'ls -l 10k files', unit: 's', items: 10_000 } },
  'fs|rm -rf of a directory': { ceph: { section: 'cephfs', test: 'rm -rf 10k files', unit: 's', items: 10_000 } },
};

/** The anchor's results.tsv (section, test, unit, repetition, value) as `section|test|unit` → values. */
export function parseAnchor(tsv: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const line of tsv.split('\n')) {
    const [section, test, unit, , raw] = line.split('\t');
    const value = Number(raw);
    if (!section || !test || !unit || raw === undefined || raw.trim() === '' || !Number.isFinite(value)) continue;
    const key = `${section}|${test}|${unit}`;
    out.set(key, [...(out.get(key) ?? []), value]);
  }
  return out;
}

const rateUnits: Record<string, number> = { 'MB/s': 1e6, 'MiB/s': 2 ** 20, 'Gbit/s': 1e9 / 8 };
const countUnits = new Set(['ops/s', 'IOPS']);

/** `value` in unit `from` expressed in unit `to`; throws when they do not measure the same thing. */
export function convert(value: number, from: string, to: string): number {
  if (from === to) return value;
  const f = rateUnits[from];
  const t = rateUnits[to];
  if (f !== undefined && t !== undefined) return (value * f) / t;
  if (countUnits.has(from) && countUnits.has(to)) return value;
  throw new Error(`cannot compare ${from} with ${to}`);
}
