import { writeFileSync } from 'node:fs';
import { ObjectClient } from '../src/index.js';
import { startBenchCluster } from './lib/cluster.js';
import { closedLoop, describe } from './lib/stats.js';

const cluster = await startBenchCluster('probe', { osds: 3 });
try {
  const client = new ObjectClient(cluster.config);
  await client.start();
  await client.monitors.command({ poolCreate: { name: 'bench', size: 3, pgNum: 64 } });
  while (client.map().pools.length < 1) await new Promise((r) => setTimeout(r, 50));
  await closedLoop(16, { count: 512 }, async (i) => (await client.put('bench', `warm-${i}`, Buffer.from('w')), 1));
  const small = Buffer.alloc(4096, 7);
  const size = Number(process.env['PROBE_BYTES'] ?? 4096);
  const data = Buffer.alloc(size, 7);
  await closedLoop(16, { seconds: 6 }, async (i) => (await client.put('bench', `s-${i % 4096}`, data), small.length));
  writeFileSync('/tmp/probe/phase', 'go');
  for (let rep = 0; rep < Number(process.env['PROBE_REPS'] ?? 2); rep++) {
    const r = await closedLoop(16, { seconds: Number(process.env['PROBE_SECONDS'] ?? 8) }, async (i) => (await client.put('bench', `s-${i % 4096}`, data), data.length));
    process.stdout.write(`${describe(`write ${size}`, r)}\n`);
  }
  await client.stop();
} finally {
  await cluster.stop();
}
