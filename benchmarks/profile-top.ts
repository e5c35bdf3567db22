/**
 * `node dist/benchmarks/profile-top.js FILE.cpuprofile ...`: the functions with the most self time in V8 CPU
 * profiles (from `node --cpu-prof`, e.g. a `shoal up` started that way passes the flag to every daemon), summed over
 * the files given, as a share of all samples. A text flame graph's top for finding where a benchmark's CPU goes.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
}

/** Samples per function (name, file basename, line), most first; `(idle)` and `(program)` included as V8 names them. */
export function selfTime(profiles: CpuProfile[]): { name: string; samples: number }[] {
  const counts = new Map<string, number>();
  for (const profile of profiles) {
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    for (const id of profile.samples) {
      const frame = byId.get(id)?.callFrame;
      if (!frame) continue;
      const file = frame.url.split('/').slice(-2).join('/');
      const key = `${frame.functionName || '(anonymous)'} ${file ? `${file}:${frame.lineNumber + 1}` : ''}`.trim();
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return [...counts].map(([name, samples]) => ({ name, samples })).sort((a, b) => b.samples - a.samples);
}

const files = process.argv.slice(2);
if (files.length > 0) {
  const rows = selfTime(files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as CpuProfile));
  const total = rows.reduce((s, r) => s + r.samples, 0);
  const busy = rows.filter((r) => r.name !== '(idle)').reduce((s, r) => s + r.samples, 0);
  process.stdout.write(`${files.length} profile(s), ${total} samples, ${((busy / total) * 100).toFixed(1)}% not idle; self time as % of the non-idle samples:\n`);
  for (const r of rows.filter((r) => r.name !== '(idle)').slice(0, Number(process.env['TOP'] ?? 25))) process.stdout.write(`${((r.samples / busy) * 100).toFixed(1).padStart(5)}%  ${r.name}\n`);
}
