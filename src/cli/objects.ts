/** `shoal obj put|get|rm|stat|ls` and `shoal df`: objects and space, through the object client and the monitors. */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ObjectClient, StorageError } from '../index.js';
import { configFor, withMonitors } from './config.js';

function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

/** Runs `fn` with a started object client for the cluster the command names, and stops it after. */
export async function withObjects<T>(command: Command, fn: (client: ObjectClient) => Promise<T>): Promise<T> {
  const { config } = configFor(command);
  const client = new ObjectClient(config);
  await client.start();
  try {
    return await fn(client);
  } finally {
    await client.stop();
  }
}

function readInput(file: string | undefined): Buffer {
  try {
    return readFileSync(file === undefined || file === '-' ? 0 : file);
  } catch (error) {
    throw new StorageError('NOT_FOUND', `cannot read ${file ?? 'stdin'}: ${(error as Error).message}`);
  }
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** Columns padded to their widest cell. */
export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? '').length))) ?? [];
  return rows.map((r) => r.map((cell, col) => cell.padEnd(widths[col] ?? 0)).join('  ').trimEnd()).join('\n');
}

export function registerObjectCommands(program: Command): void {
  const obj = program.command('obj').description('objects in a pool');
  obj.command('put').argument('<pool>').argument('<name>').argument('[file]', 'file to store (default or "-": stdin)')
    .description('store an object (replacing it)')
    .action(async (pool: string, name: string, file: string | undefined, _o: unknown, c: Command) => {
      const data = readInput(file);
      await withObjects(c, async (client) => {
        const version = await client.put(pool, name, data);
        print(`${pool}/${name}: ${data.length} bytes, version ${version.epoch}'${version.seq}`);
      });
    });
  obj.command('get').argument('<pool>').argument('<name>').argument('[file]', 'where to write it (default or "-": stdout)')
    .option('--offset <n>', 'start at this byte').option('--length <n>', 'at most this many bytes')
    .description('read an object')
    .action(async (pool: string, name: string, file: string | undefined, o: { offset?: string; length?: string }, c: Command) => {
      await withObjects(c, async (client) => {
        const data = await client.get(pool, name, { offset: Number(o.offset ?? 0), length: Number(o.length ?? 0) });
        if (file === undefined || file === '-') process.stdout.write(data);
        else writeFileSync(file, data);
      });
    });
  obj.command('rm').argument('<pool>').argument('<name>').description('remove an object')
    .action(async (pool: string, name: string, _o: unknown, c: Command) => withObjects(c, (client) => client.remove(pool, name)));
  obj.command('stat').argument('<pool>').argument('<name>').option('--json', 'print JSON').description('size, time and version of an object')
    .action(async (pool: string, name: string, o: { json?: boolean }, c: Command) => {
      await withObjects(c, async (client) => {
        const stat = await client.stat(pool, name);
        print(o.json ? JSON.stringify(stat) : `${pool}/${name} size ${stat.size} mtime ${new Date(stat.mtimeMs).toISOString()} version ${stat.version.epoch}'${stat.version.seq}`);
      });
    });
  obj.command('ls').argument('<pool>').option('--json', 'print a JSON array').description('list the objects of a pool')
    .action(async (pool: string, o: { json?: boolean }, c: Command) => {
      await withObjects(c, async (client) => {
        const all: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await client.list(pool, { ...(cursor ? { cursor } : {}), limit: 1000 });
          if (o.json) all.push(...page.names);
          else for (const n of page.names) print(n);
          cursor = page.cursor;
        } while (cursor);
        if (o.json) print(JSON.stringify(all));
      });
    });

  program.command('df').option('--json', 'print JSON').description('raw space per OSD and stored data per pool')
    .action(async (o: { json?: boolean }, c: Command) => {
      await withMonitors(c, async (client) => {
        const [map, stats] = await Promise.all([client.getMap(), client.stats()]);
        const raw = stats.reduce((s, x) => ({ total: s.total + Number(x.totalBytes ?? 0), used: s.used + Number(x.usedBytes ?? 0), avail: s.avail + Number(x.availableBytes ?? 0) }), { total: 0, used: 0, avail: 0 });
        const pools = map.pools.map((p) => {
          let objects = 0;
          let bytes = 0;
          let counted = 0;
          for (const s of stats) for (const u of s.pools ?? []) if (u.pool === p.id) { objects += Number(u.objects ?? 0); bytes += Number(u.bytes ?? 0); counted += u.pgsCounted ?? 0; }
          const factor = p.type === 'erasure' ? (p.ecK + p.ecM) / p.ecK : p.size;
          return { id: p.id, name: p.name, objects, storedBytes: bytes, rawBytes: Math.round(bytes * factor), pgs: p.pgNum, pgsCounted: counted, usableBytes: Math.floor(raw.avail / factor) };
        });
        if (o.json) return print(JSON.stringify({ raw: { totalBytes: raw.total, usedBytes: raw.used, availableBytes: raw.avail, osdsReporting: stats.length }, pools }, null, 2));
        print(`RAW: ${formatBytes(raw.total)} total, ${formatBytes(raw.used)} used, ${formatBytes(raw.avail)} available (${stats.length} of ${map.osds.length} OSDs reporting)\n`);
        print(table([
          ['POOL', 'ID', 'OBJECTS', 'STORED', 'RAW USED', 'MAX AVAIL', 'PGS COUNTED'],
          ...pools.map((p) => [p.name, String(p.id), String(p.objects), formatBytes(p.storedBytes), formatBytes(p.rawBytes), formatBytes(p.usableBytes), `${p.pgsCounted}/${p.pgs}`]),
        ]));
      });
    });
}
