/**
 * Where a benchmark phase's CPU went, from /proc (Linux): how busy the machine's cores were, how much the hypervisor
 * took (steal), CPU per operation, and the shares of the busy time by process group (the OSDs, the monitor, the
 * gateways of the cluster the benchmark started, this benchmark process, and everything else: fio, the kernel's own
 * threads, other work). A goal missed while the cores were saturated is a CPU cost to cut; one missed with idle
 * cores is a wait (fsync, round trips) to shorten. The report prints both for every missed goal.
 */
import { readFileSync } from 'node:fs';
import { daemonPids } from './daemon-memory.js';

export interface CpuUse {
  /** Busy share of all cores over the phase (user, nice, system, irq, softirq), 0..1. */
  busy: number;
  /** Share of all cores the hypervisor took (steal), 0..1. */
  steal: number;
  /** Core-milliseconds of busy CPU per operation, over the whole machine. */
  msPerOp?: number;
  /** Shares of the busy time by process group (`osd`, `mon`, `s3`, `nbd`, `bench`, `other`, ...), summing to 1. */
  shares: Record<string, number>;
}

/** Linux's USER_HZ, which /proc reports times in; 100 on every mainstream architecture. */
const ticksPerSecond = 100;

interface MachineTicks {
  busy: number;
  steal: number;
  total: number;
}

/** Parses the aggregate `cpu` line of /proc/stat (guest time is already counted in user). */
export function parseProcStat(text: string): MachineTicks | undefined {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return undefined;
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number);
  const busy = user + nice + system + irq + softirq;
  return { busy, steal, total: busy + idle + iowait + steal };
}

/** utime + stime of a process from its /proc/PID/stat text (the command name may hold spaces and parentheses). */
export function parseProcessTicks(text: string): number | undefined {
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return Number.isFinite(ticks) ? ticks : undefined;
}

function readOr<T>(path: string, parse: (text: string) => T | undefined): T | undefined {
  try {
    return parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

/** `osd.3` → `osd`, `mon.a` → `mon`; gateways keep their names. */
function groupOf(daemon: string): string {
  return daemon.split('.')[0] ?? daemon;
}

/** The daemons of the clusters below SHOAL_BENCH_DIR (set by the report) and this process, as group → pids. */
function processes(benchChildren: readonly number[]): Map<string, number[]> {
  const groups = new Map<string, number[]>([['bench', [process.pid, ...benchChildren]]]);
  const dir = process.env['SHOAL_BENCH_DIR'];
  if (!dir) return groups;
  for (const [daemon, pid] of daemonPids(dir)) {
    const group = groupOf(daemon);
    groups.set(group, [...(groups.get(group) ?? []), pid]);
  }
  return groups;
}

/**
 * Starts measuring; `stop(ops)` returns the phase's CPU use, or undefined where /proc is not readable. `benchChildren`:
 * processes of the load generator besides this one (counted in its `bench` group).
 */
export function startCpuMeter(benchChildren: readonly number[] = []): { stop(ops?: number): CpuUse | undefined } {
  const groups = processes(benchChildren);
  const ticksOf = (pid: number) => readOr(`/proc/${pid}/stat`, parseProcessTicks);
  const startMachine = readOr('/proc/stat', parseProcStat);
  const startProcs = new Map([...groups.values()].flat().map((pid) => [pid, ticksOf(pid)]));
  return {
    stop(ops?: number): CpuUse | undefined {
      const endMachine = readOr('/proc/stat', parseProcStat);
      if (!startMachine || !endMachine) return undefined;
      const total = endMachine.total - startMachine.total;
      const busy = endMachine.busy - startMachine.busy;
      if (total <= 0) return undefined;
      const shares: Record<string, number> = {};
      let known = 0;
      for (const [group, pids] of groups) {
        let ticks = 0;
        for (const pid of pids) {
          const before = startProcs.get(pid);
          const after = ticksOf(pid);
          // A process that ended during the phase: its last ticks are lost, and counted under `other`.
          if (before !== undefined && after !== undefined) ticks += after - before;
        }
        known += ticks;
        shares[group] = busy > 0 ? ticks / busy : 0;
      }
      shares['other'] = busy > 0 ? Math.max(0, busy - known) / busy : 0;
      const use: CpuUse = { busy: busy / total, steal: (endMachine.steal - startMachine.steal) / total, shares };
      if (ops && ops > 0) use.msPerOp = (busy * 1000) / ticksPerSecond / ops;
      return use;
    },
  };
}
