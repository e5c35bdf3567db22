/** Peak memory of the daemons a benchmark's `shoal up` started, found by the `<name>.pid` files of its cluster dirs. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Every `<name>.pid` file one level below `dir` (the clusters a benchmark started), as daemon name → pid. */
export function daemonPids(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  if (!existsSync(dir)) return out;
  for (const cluster of readdirSync(dir, { withFileTypes: true })) {
    if (!cluster.isDirectory()) continue;
    const clusterDir = join(dir, cluster.name);
    for (const file of readdirSync(clusterDir)) {
      if (!file.endsWith('.pid')) continue;
      const pid = Number(readFileSync(join(clusterDir, file), 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0) out.set(file.slice(0, -4), pid);
    }
  }
  return out;
}

/** VmHWM (peak resident set) of a live process in MiB, or undefined when it is gone. */
export function peakRssMiB(pid: number): number | undefined {
  try {
    const match = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}
