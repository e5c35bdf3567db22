/**
 * Cluster administration through the monitors: `status`, `mon`, `osd`, `pool`, and the CRUSH edits of a live map.
 */
import { resolve, dirname, join } from 'node:path';
import { Command, Option } from 'commander';
import { StorageError, isLogLevel, weightOne, wire, type ClusterMap, type LogLevel } from '../index.js';
import type { MonitorClient, MonitorStatusOrError } from '../client/index.js';
import { runMonitorDaemon } from '../../monitor/main.js';
import { runOsdDaemon } from '../../osd/main.js';
import { configFor, withMonitors } from './config.js';
import { formatBytes } from './objects.js';
import { formatRecovery, pgRows, pgStateSummary, recoverySummary, scrubOsd } from './pgs.js';

function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

function parseIds(values: string[]): number[] {
  return values.map((value) => {
    const match = /^(?:osd\.)?(\d{1,6})$/.exec(value);
    if (!match) throw new StorageError('INVALID_ARGUMENT', `not an OSD id: ${JSON.stringify(value)} (use N or osd.N)`);
    return Number(match[1]);
  });
}

/** A weight as a decimal ("0.5", "2") to 16.16 fixed point; negative or non-numeric is refused. */
export function parseWeight(text: string, max?: number): number {
  if (!/^\d+(\.\d+)?$/.test(text)) throw new StorageError('INVALID_ARGUMENT', `weight must be a non-negative number, got ${JSON.stringify(text)}`);
  const value = Math.round(Number(text) * weightOne);
  if (!Number.isSafeInteger(value) || value > 0xffff_ffff || (max !== undefined && value > max)) {
    throw new StorageError('INVALID_ARGUMENT', `weight ${text} is out of range${max !== undefined ? ` (at most ${max / weightOne})` : ''}`);
  }
  return value;
}

function parseCount(name: string, text: string): number {
  if (!/^\d{1,9}$/.test(text)) throw new StorageError('INVALID_ARGUMENT', `${name} must be a non-negative integer, got ${JSON.stringify(text)}`);
  return Number(text);
}

const crushTypeByName: Record<string, wire.CrushType> = {
  host: wire.CrushType.CRUSH_TYPE_HOST,
  rack: wire.CrushType.CRUSH_TYPE_RACK,
  zone: wire.CrushType.CRUSH_TYPE_ZONE,
  root: wire.CrushType.CRUSH_TYPE_ROOT,
};

async function runCommand(command: Command, monitorCommand: wire.MonitorCommand.$Properties): Promise<void> {
  await withMonitors(command, async (client) => {
    const reply = await client.command(monitorCommand);
    print(`${reply.message} (epoch ${reply.epoch})`);
  });
}

export function health(map: ClusterMap, monitors: MonitorStatusOrError[]): { status: string; checks: string[] } {
  const checks: string[] = [];
  const reachable = monitors.filter((m) => m.status);
  const leaders = new Set(reachable.map((m) => m.status?.leader).filter((l) => l));
  if (reachable.length < monitors.length) checks.push(`${monitors.length - reachable.length} of ${monitors.length} monitors unreachable`);
  if (leaders.size === 0) checks.push('no monitor quorum (map changes are blocked)');
  const down = map.osds.filter((o) => !o.up);
  const out = map.osds.filter((o) => !o.in);
  if (down.length > 0) checks.push(`${down.length} osds down`);
  if (out.length > 0) checks.push(`${out.length} osds out`);
  for (const flag of map.flags) checks.push(`${flag} flag set`);
  if (map.osds.length === 0) checks.push('no OSDs');
  const status = leaders.size === 0 ? 'HEALTH_ERR' : checks.length > 0 ? 'HEALTH_WARN' : 'HEALTH_OK';
  return { status, checks };
}

async function fetchStatus(client: MonitorClient): Promise<{ map: ClusterMap; monitors: MonitorStatusOrError[] }> {
  const [map, monitors] = await Promise.all([client.getMap(), client.statusAll()]);
  return { map, monitors };
}

export function formatOsdTree(map: ClusterMap, usage: Map<number, { used: number; total: number }> = new Map()): string {
  const rows: string[][] = [['ID', 'WEIGHT', 'TYPE NAME', 'STATUS', 'REWEIGHT', 'IN', 'USED', 'SIZE']];
  const byId = new Map(map.crush.buckets.map((b) => [b.id, b]));
  const children = new Set(map.crush.buckets.flatMap((b) => b.items.map((i) => i.id)));
  const weightText = (w: number) => (w / weightOne).toFixed(5);
  const visit = (id: number, weight: number, depth: number) => {
    const indent = '    '.repeat(depth);
    if (id >= 0) {
      const osd = map.osds.find((o) => o.id === id);
      const u = usage.get(id);
      rows.push([String(id), weightText(weight), `${indent}osd.${id}`, osd?.up ? 'up' : 'down', weightText(osd?.reweight ?? 0), osd?.in ? 'in' : 'out', u ? formatBytes(u.used) : '-', u ? formatBytes(u.total) : '-']);
      return;
    }
    const bucket = byId.get(id);
    if (!bucket) return;
    rows.push([String(id), weightText(weight), `${indent}${bucket.type} ${bucket.name}`, '', '', '', '', '']);
    for (const item of bucket.items) visit(item.id, item.weight, depth + 1);
  };
  for (const bucket of map.crush.buckets) {
    if (!children.has(bucket.id)) visit(bucket.id, bucket.items.reduce((s, i) => s + i.weight, 0), 0);
  }
  const orphans = map.osds.filter((o) => !children.has(o.id));
  for (const osd of orphans) visit(osd.id, 0, 0);
  const widths = rows[0]?.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? '').length))) ?? [];
  return rows.map((r) => r.map((cell, col) => cell.padEnd(widths[col] ?? 0)).join('  ').trimEnd()).join('\n');
}

export function registerClusterCommands(program: Command): void {
  program
    .command('status')
    .description('cluster health, monitors, OSDs and pools')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }, command: Command) => {
      await withMonitors(command, async (client) => {
        const { map, monitors } = await fetchStatus(client);
        const stats = await client.stats().catch(() => []);
        const rows = pgRows(map, stats);
        const pgStates = pgStateSummary(rows);
        const recovery = recoverySummary(map, stats, rows);
        const h = health(map, monitors);
        const leader = monitors.find((m) => m.status?.role === 'leader')?.name ?? '';
        const summary = {
          fsid: map.fsid,
          health: h.status,
          checks: h.checks,
          epoch: map.epoch,
          monitors: monitors.map((m) => ({ name: m.name, address: m.address, role: m.status?.role ?? 'unreachable' })),
          leader,
          osds: { total: map.osds.length, up: map.osds.filter((o) => o.up).length, in: map.osds.filter((o) => o.in).length },
          pools: map.pools.length,
          pgs: map.pools.reduce((s, p) => s + p.pgNum, 0),
          pgStates,
          recovery,
          flags: map.flags,
        };
        if (options.json) return print(JSON.stringify(summary, null, 2));
        print(
          [
            `  cluster: ${map.fsid}`,
            `  health:  ${h.status}${h.checks.map((c) => `\n           ${c}`).join('')}`,
            `  mon:     ${monitors.length} daemons, leader ${leader || 'none'}, reachable ${monitors.filter((m) => m.status).map((m) => m.name).join(',') || 'none'}`,
            `  osd:     ${summary.osds.total} osds: ${summary.osds.up} up, ${summary.osds.in} in`,
            `  pools:   ${summary.pools} pools, ${summary.pgs} pgs`,
            `  pgs:     ${pgStates}`,
            ...(formatRecovery(recovery) ? [`  io:      ${formatRecovery(recovery)}`] : []),
            `  map:     epoch ${map.epoch}${map.flags.length ? `, flags ${map.flags.join(',')}` : ''}`,
          ].join('\n'),
        );
      });
    });

  const mon = program
    .command('mon')
    .description('run a monitor daemon (--id), or inspect the monitors')
    .option('--id <name>', "this monitor's name in the config")
    .option('--data <dir>', "data directory (default: mon.<id> beside the config file)")
    .addOption(new Option('--log-level <level>', 'debug, info, warn or error').default('info'))
    .option('--log-json', 'log JSON lines')
    .action(async (options: { id?: string; data?: string; logLevel: string; logJson?: boolean }, command: Command) => {
      if (!options.id) throw new StorageError('INVALID_ARGUMENT', 'shoal mon needs --id NAME (or a subcommand: stat)');
      if (!isLogLevel(options.logLevel)) throw new StorageError('INVALID_ARGUMENT', `unknown log level ${options.logLevel}`);
      const { path, config } = configFor(command);
      await runMonitorDaemon({
        id: options.id,
        config,
        dataDir: resolve(options.data ?? join(dirname(path), `mon.${options.id}`)),
        logLevel: options.logLevel as LogLevel,
        logJson: options.logJson ?? false,
      });
    });
  mon
    .command('stat')
    .description('each monitor: role, term, leader, commit and applied index, log size')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }, command: Command) => {
      await withMonitors(command, async (client) => {
        const all = await client.statusAll();
        if (options.json) {
          return print(JSON.stringify(all.map((m) => ({ name: m.name, address: m.address, ...(m.status ? m.status : { error: m.error?.code }) })), null, 2));
        }
        for (const m of all) {
          print(
            m.status
              ? `mon.${m.name} ${m.address} ${m.status.role} term ${m.status.term} leader ${m.status.leader || '-'} commit ${m.status.commitIndex} applied ${m.status.appliedIndex} epoch ${m.status.epoch} log ${m.status.logEntries} snapshot ${m.status.snapshotIndex}`
              : `mon.${m.name} ${m.address} unreachable (${m.error?.code})`,
          );
        }
      });
    });

  const osd = program
    .command('osd')
    .description('run an OSD daemon (--id), or manage OSDs in the cluster map')
    .option('--id <n>', 'OSD id')
    .option('--data <dir>', "data directory (default: osd.<id> beside the config file)")
    .option('--listen <host:port>', 'data-plane address to listen on', '127.0.0.1:0')
    .option('--advertise <host:port>', 'address peers and clients use (default: the listen address)')
    .option('--host <name>', 'CRUSH host (default: this machine\'s hostname)')
    .option('--weight <w>', 'CRUSH weight (e.g. its size in TiB)')
    .addOption(new Option('--log-level <level>', 'debug, info, warn or error').default('info'))
    .option('--log-json', 'log JSON lines')
    .action(async (o: { id?: string; data?: string; listen: string; advertise?: string; host?: string; weight?: string; logLevel: string; logJson?: boolean }, command: Command) => {
      if (o.id === undefined) throw new StorageError('INVALID_ARGUMENT', 'shoal osd needs --id N (or a subcommand: tree, out, in, ...)');
      if (!isLogLevel(o.logLevel)) throw new StorageError('INVALID_ARGUMENT', `unknown log level ${o.logLevel}`);
      const id = parseIds([o.id])[0] ?? 0;
      const { path, config } = configFor(command);
      await runOsdDaemon({
        id,
        config,
        dataDir: resolve(o.data ?? join(dirname(path), `osd.${id}`)),
        listenAddress: o.listen,
        ...(o.advertise ? { advertiseAddress: o.advertise } : {}),
        ...(o.host ? { host: o.host } : {}),
        ...(o.weight ? { crushWeight: parseWeight(o.weight) } : {}),
        logLevel: o.logLevel as LogLevel,
        logJson: o.logJson ?? false,
      });
    });
  for (const [name, light] of [['scrub', true], ['deep-scrub', false]] as const) {
    osd
      .command(name)
      .argument('<id>', 'OSD id (N or osd.N)')
      .option('--json', 'print JSON')
      .description(`${light ? 'scrub' : 'deep scrub'} every PG the OSD is primary of`)
      .action(async (id: string, o: { json?: boolean }, c: Command) => scrubOsd(c, parseIds([id])[0] ?? 0, { light, json: o.json ?? false }));
  }
  osd
    .command('tree')
    .description('the CRUSH hierarchy with each OSD up/down and in/out')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }, command: Command) => {
      await withMonitors(command, async (client) => {
        const [map, stats] = await Promise.all([client.getMap(), client.stats().catch(() => [])]);
        const usage = new Map(stats.map((s) => [s.id ?? -1, { used: Number(s.usedBytes ?? 0), total: Number(s.totalBytes ?? 0) }]));
        print(options.json ? JSON.stringify({ buckets: map.crush.buckets, osds: map.osds.map((o) => ({ ...o, usedBytes: usage.get(o.id)?.used, totalBytes: usage.get(o.id)?.total })) }, null, 2) : formatOsdTree(map, usage));
      });
    });
  osd.command('out').argument('<ids...>').description('mark OSDs out (their data moves elsewhere)')
    .action((ids: string[], _o: unknown, c: Command) => runCommand(c, { osdOut: { ids: parseIds(ids), reason: 'admin' } }));
  osd.command('in').argument('<ids...>').description('mark OSDs in')
    .action((ids: string[], _o: unknown, c: Command) => runCommand(c, { osdIn: { ids: parseIds(ids) } }));
  osd.command('down').argument('<ids...>').description('mark OSDs down (a running OSD boots again)')
    .action((ids: string[], _o: unknown, c: Command) => runCommand(c, { osdDown: { ids: parseIds(ids), reason: 'admin' } }));
  osd.command('reweight').argument('<id>').argument('<weight>', 'between 0 and 1').description("set an OSD's reweight (share of its CRUSH weight it keeps)")
    .action((id: string, weight: string, _o: unknown, c: Command) => runCommand(c, { osdReweight: { id: parseIds([id])[0] ?? 0, reweight: parseWeight(weight, weightOne) } }));
  // `--id`, `--host` and `--weight` are the osd command's own options (shared with the daemon form), read from there.
  osd.command('create').description('add an OSD to the map (an OSD daemon that boots with a new id does this itself); takes --id, --host, --weight')
    .action((_o: unknown, c: Command) => {
      const o = c.optsWithGlobals<{ id?: string; host?: string; weight?: string }>();
      return runCommand(c, { osdCreate: { hasId: o.id !== undefined, id: o.id === undefined ? 0 : (parseIds([o.id])[0] ?? 0), host: o.host ?? '', crushWeight: parseWeight(o.weight ?? '1') } });
    });
  osd.command('rm').argument('<id>').description('remove a down OSD from the map')
    .action((id: string, _o: unknown, c: Command) => runCommand(c, { osdRm: { id: parseIds([id])[0] ?? 0 } }));
  osd.command('set').argument('<flag>', 'noout, noin, nodown, noup, pause, noscrub, nodeep-scrub, norecover, nobackfill, norebalance').description('set a cluster flag')
    .action((flag: string, _o: unknown, c: Command) => runCommand(c, { flagSet: { flag, on: true } }));
  osd.command('unset').argument('<flag>').description('clear a cluster flag')
    .action((flag: string, _o: unknown, c: Command) => runCommand(c, { flagSet: { flag, on: false } }));

  const pool = program.command('pool').description('pools');
  pool
    .command('ls')
    .option('--json', 'print JSON')
    .description('list pools')
    .action(async (options: { json?: boolean }, command: Command) => {
      await withMonitors(command, async (client) => {
        const map = await client.getMap();
        if (options.json) return print(JSON.stringify(map.pools, null, 2));
        for (const p of map.pools) {
          const shape = p.type === 'erasure' ? `erasure k=${p.ecK} m=${p.ecM} stripe_unit ${p.stripeUnit}` : `replicated size ${p.size}`;
          const rule = map.crush.rules.find((r) => r.id === p.rule)?.name ?? p.rule;
          print(`pool ${p.id} '${p.name}' ${shape} min_size ${p.minSize} pg_num ${p.pgNum} rule ${rule}${p.application ? ` application ${p.application}` : ''}`);
        }
      });
    });
  pool
    .command('create')
    .argument('<name>')
    .description('create a replicated pool, or an erasure-coded one with --ec K,M')
    .option('--size <n>', 'replicas (replicated pools)')
    .option('--min-size <n>', 'members needed for I/O')
    .option('--pg-num <n>', 'placement groups')
    .option('--ec <k,m>', 'erasure code profile, e.g. 4,2')
    .option('--stripe-unit <bytes>', 'erasure pools: bytes per data chunk (e.g. 65536 or 64K)')
    .option('--rule <name>', 'CRUSH rule')
    .option('--application <app>', 'rados, s3, block or fs')
    .action((name: string, o: { size?: string; minSize?: string; pgNum?: string; ec?: string; stripeUnit?: string; rule?: string; application?: string }, c: Command) => {
      const create: wire.PoolCreate.$Properties = { name, rule: o.rule ?? '', application: o.application ?? '' };
      if (o.ec !== undefined) {
        const match = /^(\d{1,2}),(\d{1,2})$/.exec(o.ec);
        if (!match) throw new StorageError('INVALID_ARGUMENT', `--ec takes K,M (e.g. 4,2), got ${JSON.stringify(o.ec)}`);
        create.type = wire.PoolType.POOL_TYPE_ERASURE;
        create.ecK = Number(match[1]);
        create.ecM = Number(match[2]);
      }
      if (o.stripeUnit !== undefined) {
        const match = /^(\d{1,9})([KkMm]?)$/.exec(o.stripeUnit);
        if (!match) throw new StorageError('INVALID_ARGUMENT', `--stripe-unit takes bytes, e.g. 65536 or 64K`);
        create.stripeUnit = Number(match[1]) * ({ '': 1, k: 1024, m: 1024 * 1024 }[(match[2] ?? '').toLowerCase()] ?? 1);
      }
      if (o.size !== undefined) create.size = parseCount('--size', o.size);
      if (o.minSize !== undefined) create.minSize = parseCount('--min-size', o.minSize);
      if (o.pgNum !== undefined) create.pgNum = parseCount('--pg-num', o.pgNum);
      return runCommand(c, { poolCreate: create });
    });
  pool.command('rm').argument('<name>').description('remove a pool and its data')
    .action((name: string, _o: unknown, c: Command) => runCommand(c, { poolRm: { name } }));
  pool.command('set').argument('<name>').argument('<key>', 'size, min_size, pg_num, rule or application').argument('<value>').description('change a pool setting')
    .action((name: string, key: string, value: string, _o: unknown, c: Command) => runCommand(c, { poolSet: { name, key, value } }));

  const crush = program.commands.find((c) => c.name() === 'crush') ?? program.command('crush');
  crush.command('add-bucket').argument('<name>').argument('<type>', 'host, rack, zone or root').option('--parent <bucket>', 'where to attach it (default: the default root)')
    .description('add a bucket to the live CRUSH map')
    .action((name: string, type: string, o: { parent?: string }, c: Command) => {
      const wireType = crushTypeByName[type];
      if (wireType === undefined) throw new StorageError('INVALID_ARGUMENT', `bucket type must be host, rack, zone or root, not ${JSON.stringify(type)}`);
      return runCommand(c, { crushAddBucket: { name, type: wireType, parent: o.parent ?? '' } });
    });
  crush.command('move').argument('<name>', 'a bucket or osd.N').argument('<parent>').description('move a bucket or OSD in the live CRUSH map')
    .action((name: string, parent: string, _o: unknown, c: Command) => runCommand(c, { crushMove: { name, parent } }));
  crush.command('set-weight').argument('<osd>', 'osd.N').argument('<weight>').description("set an OSD's CRUSH weight (e.g. its size in TiB)")
    .action((name: string, weight: string, _o: unknown, c: Command) => runCommand(c, { crushSetWeight: { name: /^\d+$/.test(name) ? `osd.${name}` : name, weight: parseWeight(weight) } }));
}
