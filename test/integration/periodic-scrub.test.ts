/**
 * Periodic scrubs (issue 6): OSDs in-process on real LevelDB stores, with the `osd` section of the cluster config
 * setting short scrub intervals. Rotted copies are found by the OSDs' own deep scrubs: without `autoRepair` their PGs
 * show active+inconsistent; restarted with `autoRepair` the OSDs rewrite the bad copies and the PGs turn clean.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ObjectClient, Random, createLogger, parseClusterConfig, pgIdToString, placementFor, systemClock, type ClusterConfig, type LogLevel, type OsdSettings } from '../../src/index.js';
import { createMonitor, type Monitor } from '../../monitor/monitor.js';
import { createOsd, type Osd } from '../../osd/osd.js';
import { LevelStore } from '../../osd/store/index.js';
import { cliPath, removeDir, tempDir, waitFor, writeClusterConfig } from '../helpers/processes.js';

let dir: string;
let config: ClusterConfig;
let monitor: Monitor;
let osds: Osd[] = [];
let stores: LevelStore[] = [];
let client: ObjectClient;
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const logLevel = (process.env['SHOAL_TEST_LOG'] ?? 'error') as LogLevel;

async function startOsds(osd: OsdSettings): Promise<void> {
  for (let id = 0; id < 3; id++) {
    const logger = createLogger({ name: `osd.${id}`, level: logLevel });
    const store = new LevelStore({ dir: join(dir, `osd.${id}`), logger });
    stores[id] = store;
    const daemon = createOsd({ id, cluster: { ...config, osd }, host: `node-${id}`, listenAddress: '127.0.0.1:0' }, { store, clock: systemClock, logger });
    await daemon.start();
    osds[id] = daemon;
  }
}

async function stopOsds(): Promise<void> {
  for (const osd of osds) await osd.stop();
  osds = [];
  stores = [];
}

async function pgStates(): Promise<Map<string, string>> {
  const { stdout } = await promisify(execFile)(process.execPath, [cliPath, '--conf', join(dir, 'shoal.conf'), 'pg', 'ls', '--pool', 'data', '--json']);
  return new Map((JSON.parse(stdout) as { pgid: string; state: string }[]).map((r) => [r.pgid, r.state]));
}

const scrubbing: OsdSettings = { recoveryOpsMax: 2, recoverySleepMs: 0, scrubIntervalMs: 400, deepScrubIntervalMs: 800, autoRepair: false };

before(async () => {
  dir = tempDir('scrub');
  ({ config } = await writeClusterConfig(dir, ['a'], { tickMs: 50, osdHeartbeatIntervalMs: 300, osdGraceMs: 3000, monitorCallTimeoutMs: 2000 }));
  monitor = createMonitor({ id: 'a', cluster: config, dataDir: join(dir, 'mon.a') }, { clock: systemClock, random: new Random(1), logger: createLogger({ name: 'mon.a', level: logLevel }) });
  await monitor.start();
  await startOsds({ ...scrubbing, scrubIntervalMs: 3600_000, deepScrubIntervalMs: 3600_000 });
  client = new ObjectClient(config, { opTimeoutMs: 30_000 });
  await client.start();
  await client.monitors.command({ poolCreate: { name: 'data', pgNum: 8 } });
  await waitFor('the pool in the client map', 10_000, () => (client.map().pools.length > 0 ? true : undefined));
});

after(async () => {
  await client?.stop();
  await stopOsds();
  await monitor?.stop();
  removeDir(dir);
});

test('the osd section of the config is checked: unknown keys and bad values are refused', () => {
  const text = (osd: unknown) => JSON.stringify({ fsid: 'abcdef0123', monitors: [{ name: 'a', address: '127.0.0.1:1' }], osd });
  assert.equal(parseClusterConfig(text({ autoRepair: true, scrubIntervalMs: 5 })).osd?.autoRepair, true);
  assert.throws(() => parseClusterConfig(text({ scrubEvery: 5 })), /unknown key/);
  assert.throws(() => parseClusterConfig(text({ autoRepair: 'yes' })), /autoRepair/);
  assert.throws(() => parseClusterConfig(text({ recoveryOpsMax: 0 })), /recoveryOpsMax/);
});

test('periodic deep scrubs find rotted copies (PGs active+inconsistent); with autoRepair the OSDs rewrite them', async () => {
  const names = Array.from({ length: 24 }, (_, i) => `scrub-${i}`);
  const contents = new Map(names.map((n) => [n, randomBytes(50_000 + 13 * names.indexOf(n))]));
  for (const name of names) await client.put('data', name, contents.get(name) as Buffer);
  const placement = placementFor(client.map());
  const victim = 2;
  const rotted = names.filter((_, i) => i % 6 === 0);
  const rottedPgs = new Set(rotted.map((n) => pgIdToString(placement.mapObject(1, n).pgId)));
  for (const name of rotted) await (stores[victim] as LevelStore).corrupt({ pg: pgIdToString(placement.mapObject(1, name).pgId), name }, { kind: 'flip', offset: 1000 });

  // Scrubbing every few hundred ms, no repair: exactly the PGs with rotted copies turn inconsistent.
  await stopOsds();
  await startOsds(scrubbing);
  const states = await waitFor('the rotted PGs to show inconsistent', 60_000, async () => {
    const s = await pgStates();
    return [...rottedPgs].every((pg) => s.get(pg)?.includes('inconsistent')) ? s : undefined;
  }, 300);
  for (const [pg, state] of states) if (!rottedPgs.has(pg)) assert.equal(state, 'active+clean', `${pg} holds no rotted copy`);

  // The finding is kept with the PG: restarted with scrubs far apart, those PGs still show inconsistent.
  await stopOsds();
  await startOsds({ ...scrubbing, scrubIntervalMs: 3600_000, deepScrubIntervalMs: 3600_000 });
  await waitFor('the rotted PGs inconsistent after a restart', 60_000, async () => {
    const s = await pgStates();
    return [...s.values()].every((state) => state.startsWith('active')) && [...rottedPgs].every((pg) => s.get(pg)?.includes('inconsistent')) ? true : undefined;
  }, 300);

  // The same OSDs with autoRepair: the bad copies are rewritten and every PG turns clean.
  await stopOsds();
  await startOsds({ ...scrubbing, autoRepair: true });
  const victimStore = stores[victim] as LevelStore;
  for (const name of rotted) {
    const oid = { pg: pgIdToString(placement.mapObject(1, name).pgId), name };
    const repaired = await waitFor(`${name}: osd.${victim}'s copy rewritten`, 60_000, async () => {
      const data = await victimStore.read(oid).catch(() => undefined);
      return data && md5(data) === md5(contents.get(name) as Buffer) ? true : undefined;
    }, 300);
    assert.equal(repaired, true);
  }
  await waitFor('every PG clean again', 60_000, async () => ([...(await pgStates()).values()].every((s) => s === 'active+clean') ? true : undefined), 300);
});
