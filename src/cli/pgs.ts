/**
 * `shoal pg ls` and the PG line of `shoal status`: each PG's state as its current primary last reported it with its
 * heartbeat (the monitors keep these reports in memory). A PG whose primary has not reported it yet is `unknown`; one
 * with no up OSD at all is `down`; an active PG with fewer members than the pool's size is `active+degraded`. A report
 * made for another acting set than the current map's is `peering`: the primary has not yet reported the new interval,
 * and its old `active` says nothing about the members the PG has now.
 */
import type { Command } from 'commander';
import { CRUSH_ITEM_NONE, StorageError, actingFromUp, pgIdToString, placementFor, type ClusterMap, wire } from '../index.js';
import { withMonitors } from './config.js';
import { table, withObjects } from './objects.js';

export interface PgRow {
  pgid: string;
  pool: string;
  state: string;
  acting: number[];
  primary: number;
  objects: number;
  bytes: number;
  /** Object copies its members still lack (recovery or backfill to do). */
  degraded: number;
  recovered: number;
  recoveryPerSec: number;
}

/** Every PG of every pool (or of `poolName`) with the state its primary reported. */
export function pgRows(map: ClusterMap, stats: readonly wire.OsdStats.$Properties[], poolName?: string): PgRow[] {
  const reports = new Map<string, { osd: number; stat: wire.PgStat.$Properties }>();
  for (const s of stats) {
    for (const stat of s.pgStats ?? []) reports.set(`${stat.pool ?? 0}.${stat.seed ?? 0}@${s.id ?? -1}`, { osd: s.id ?? -1, stat });
  }
  const placement = placementFor(map);
  const pools = map.pools.filter((p) => poolName === undefined || p.name === poolName);
  if (poolName !== undefined && pools.length === 0) throw new StorageError('NOT_FOUND', `pool ${poolName} does not exist`);
  const rows: PgRow[] = [];
  for (const pool of pools) {
    for (let seed = 0; seed < pool.pgNum; seed++) {
      const mapping = placement.mapPg({ pool: pool.id, seed });
      const acting = mapping.up.filter((o) => o >= 0 && o !== CRUSH_ITEM_NONE);
      const report = reports.get(`${pool.id}.${seed}@${mapping.primary}`)?.stat;
      const current = actingFromUp(mapping.up).join(',');
      let state: string;
      if (mapping.primary < 0) state = 'down';
      else if (!report) state = 'unknown';
      else if ((report.acting ?? []).join(',') !== current) state = 'peering';
      else if (report.state === 'active') state = acting.length < pool.size ? 'active+degraded' : 'active+clean';
      else state = report.state ?? 'unknown';
      rows.push({
        pgid: pgIdToString(mapping.pgId),
        pool: pool.name,
        state,
        acting,
        primary: mapping.primary,
        objects: Number(report?.objects ?? 0),
        bytes: Number(report?.bytes ?? 0),
        degraded: Number(report?.degraded ?? 0),
        recovered: Number(report?.recovered ?? 0),
        recoveryPerSec: report?.recoveryPerSec ?? 0,
      });
    }
  }
  return rows;
}

/** "12 active+clean, 4 peering" */
export function pgStateSummary(rows: readonly PgRow[]): string {
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r.state, (counts.get(r.state) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]).map(([state, n]) => `${n} ${state}`).join(', ') || 'none';
}

export interface RecoverySummary {
  /** Object copies members of acting sets still lack. */
  degraded: number;
  /** Copies held by OSDs outside the acting sets (kept until their PG is clean elsewhere, then removed). */
  misplaced: number;
  recovered: number;
  perSec: number;
}

/** Recovery across the cluster, from the primaries' PG reports and the OSDs' object counts. */
export function recoverySummary(map: ClusterMap, stats: readonly wire.OsdStats.$Properties[], rows: readonly PgRow[]): RecoverySummary {
  const size = new Map(map.pools.map((p) => [p.name, p.size]));
  const placed = rows.reduce((sum, r) => sum + r.objects * (size.get(r.pool) ?? 0), 0);
  const held = stats.reduce((sum, s) => sum + Number(s.objects ?? 0), 0);
  const degraded = rows.reduce((sum, r) => sum + r.degraded, 0);
  return {
    degraded,
    misplaced: rows.every((r) => r.state !== 'unknown') ? Math.max(0, held - placed - degraded) : 0,
    recovered: rows.reduce((sum, r) => sum + r.recovered, 0),
    perSec: rows.reduce((sum, r) => sum + r.recoveryPerSec, 0),
  };
}

/** "1,204 degraded, 300 misplaced; 85 objects/s [######------] 52%, about 14 s left" ('' when there is nothing to do). */
export function formatRecovery(r: RecoverySummary, barWidth = 20): string {
  if (r.degraded === 0 && r.misplaced === 0) return '';
  const parts = [`${r.degraded} degraded, ${r.misplaced} misplaced object copies`];
  if (r.degraded > 0) {
    const done = r.recovered / (r.recovered + r.degraded);
    const filled = Math.round(done * barWidth);
    const eta = r.perSec > 0 ? `, about ${formatSeconds(r.degraded / r.perSec)} left` : '';
    parts.push(`recovering ${r.perSec.toFixed(1)} objects/s [${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}] ${Math.floor(done * 100)}%${eta}`);
  }
  return parts.join('; ');
}

function formatSeconds(seconds: number): string {
  if (seconds < 90) return `${Math.ceil(seconds)} s`;
  if (seconds < 5400) return `${Math.ceil(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** "POOL.SEED" with SEED in hex, as `pg ls` prints it. */
function parsePgId(text: string): { pool: number; seed: number } {
  const m = /^(\d+)\.([0-9a-f]+)$/.exec(text);
  if (!m) throw new StorageError('INVALID_ARGUMENT', `not a PG id: ${JSON.stringify(text)} (POOL.SEED, as shoal pg ls prints it)`);
  return { pool: Number(m[1]), seed: parseInt(m[2] ?? '0', 16) };
}

interface ScrubTarget {
  pgid: string;
  pool: string;
  seed: number;
}

/** Scrubs PGs one after another through their primaries and prints one report per PG (or JSON). */
async function scrubPgs(command: Command, targets: (map: ClusterMap) => ScrubTarget[], options: { repair: boolean; light: boolean; json: boolean }): Promise<void> {
  await withObjects(command, async (client) => {
    const reports = [];
    for (const t of targets(client.map())) {
      const r = await client.scrubPg(t.pool, t.seed, options.repair, options.light);
      reports.push({ pg: t.pgid, objects: r.objects, members: r.members, inconsistent: r.inconsistent.map((i) => ({ object: i.object ?? '', osds: i.osds ?? [], reason: i.reason ?? '' })), repaired: r.repaired });
    }
    if (options.json) {
      process.stdout.write(JSON.stringify(reports, null, 2) + '\n');
      return;
    }
    const lines: string[] = [];
    for (const r of reports) {
      lines.push(`pg ${r.pg} on [${r.members.join(',')}]: ${r.objects} objects, ${r.inconsistent.length} inconsistent${options.repair ? `, ${r.repaired} repaired` : ''}`);
      for (const i of r.inconsistent) lines.push(`  ${i.object}: ${i.reason}`);
    }
    process.stdout.write((lines.join('\n') || 'no PGs to scrub') + '\n');
  });
}

function onePg(pgid: string): (map: ClusterMap) => ScrubTarget[] {
  const id = parsePgId(pgid);
  return (map) => {
    const pool = map.pools.find((p) => p.id === id.pool);
    if (!pool) throw new StorageError('NOT_FOUND', `pool ${id.pool} does not exist`);
    return [{ pgid, pool: pool.name, seed: id.seed }];
  };
}

/** `shoal osd scrub|deep-scrub ID`: every PG the OSD is primary of. */
export async function scrubOsd(command: Command, osd: number, options: { light: boolean; json: boolean }): Promise<void> {
  await scrubPgs(command, (map) => {
    if (!map.osds.some((o) => o.id === osd)) throw new StorageError('NOT_FOUND', `osd.${osd} does not exist`);
    const placement = placementFor(map);
    const targets: ScrubTarget[] = [];
    for (const pool of map.pools) {
      for (let seed = 0; seed < pool.pgNum; seed++) {
        const mapping = placement.mapPg({ pool: pool.id, seed });
        if (mapping.primary === osd) targets.push({ pgid: pgIdToString(mapping.pgId), pool: pool.name, seed });
      }
    }
    return targets;
  }, { repair: false, ...options });
}

export function registerPgCommands(program: Command): void {
  const pg = program.command('pg').description('placement groups');
  pg.command('scrub')
    .argument('<pgid>', 'POOL.SEED as shoal pg ls prints it')
    .option('--json', 'print JSON')
    .description("compare every member's list of the PG's objects and their versions (no data read)")
    .action(async (pgid: string, o: { json?: boolean }, c: Command) => scrubPgs(c, onePg(pgid), { repair: false, light: true, json: o.json ?? false }));
  pg.command('deep-scrub')
    .argument('<pgid>', 'POOL.SEED as shoal pg ls prints it')
    .option('--repair', 'also rewrite bad copies from good ones')
    .option('--json', 'print JSON')
    .description("read and compare every member's copy of every object of the PG; report inconsistencies by object")
    .action(async (pgid: string, o: { repair?: boolean; json?: boolean }, c: Command) => scrubPgs(c, onePg(pgid), { repair: o.repair ?? false, light: false, json: o.json ?? false }));
  pg.command('repair')
    .argument('<pgid>', 'POOL.SEED as shoal pg ls prints it')
    .option('--json', 'print JSON')
    .description('deep scrub the PG and rewrite every bad copy from a good one')
    .action(async (pgid: string, o: { json?: boolean }, c: Command) => scrubPgs(c, onePg(pgid), { repair: true, light: false, json: o.json ?? false }));
  pg.command('ls')
    .description('every PG with its state, acting set and usage, as each primary last reported it')
    .option('--pool <name>', 'only this pool')
    .option('--json', 'print JSON')
    .action(async (options: { pool?: string; json?: boolean }, command: Command) => {
      await withMonitors(command, async (client) => {
        const [map, stats] = await Promise.all([client.getMap(), client.stats()]);
        const rows = pgRows(map, stats, options.pool);
        if (options.json) {
          process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
          return;
        }
        process.stdout.write(table([['PG', 'STATE', 'ACTING', 'PRIMARY', 'OBJECTS', 'BYTES', 'DEGRADED'], ...rows.map((r) => [r.pgid, r.state, `[${r.acting.join(',')}]`, `osd.${r.primary}`, String(r.objects), String(r.bytes), String(r.degraded)])]) + '\n');
        process.stdout.write(`${rows.length} pgs: ${pgStateSummary(rows)}\n`);
      });
    });
}
