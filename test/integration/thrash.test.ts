/**
 * Issue 6 acceptance with real processes: 1 monitor and 5 OSDs (one per CRUSH host), a pool of size 3 / min_size 2,
 * and a writer–reader–verifier load while, every `SHOAL_THRASH_STEP_MS` (20 s), one OSD is killed -9, restarted,
 * marked out or marked in (never two down at once). Every read must return what the last acknowledged write (or a
 * write still unanswered) put there, and afterwards every PG must come back to active+clean and every object read
 * back. A sixth OSD then joins the loaded cluster: each OSD's share of PG copies lands within ±15% of its weight share
 * and nothing is lost. `SHOAL_THRASH_MS` sets the length of the thrashing (default 3 minutes).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ObjectClient, StorageError, seedFromEnv, type ClusterConfig } from '../../src/index.js';
import { pgRows } from '../../src/cli/pgs.js';
import { Daemon, removeDir, tempDir, waitFor, writeClusterConfig } from '../helpers/processes.js';

const thrashMs = Number(process.env.SHOAL_THRASH_MS ?? 180_000);
const stepMs = Number(process.env.SHOAL_THRASH_STEP_MS ?? 20_000);
const poolName = 'thrash';
const objectsMax = 240;
const writers = 6;
const readers = 3;

let dir: string;
let confPath: string;
let config: ClusterConfig;
let mon: Daemon;
const osds = new Map<number, Daemon>();
let client: ObjectClient;

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function osdDaemon(id: number): Daemon {
  return new Daemon(`osd.${id}`, ['osd', '--id', String(id), '--conf', confPath, '--data', join(dir, `osd.${id}`), '--listen', '127.0.0.1:0', '--host', `node-${id}`, ...(process.env.SHOAL_THRASH_DEBUG ? ['--log-level', 'debug'] : [])], join(dir, `osd.${id}.log`));
}

async function waitForUp(ids: number[], up: boolean, timeoutMs = 30_000): Promise<void> {
  await waitFor(`osd ${ids.join(',')} ${up ? 'up' : 'down'}`, timeoutMs, async () => {
    const map = await client.monitors.getMap();
    return ids.every((id) => map.osds.find((o) => o.id === id)?.up === up) ? true : undefined;
  });
}

/** Every PG active+clean as its primary reports it, and every OSD in the map on the current epoch. */
async function allClean(): Promise<boolean> {
  const [map, stats] = await Promise.all([client.monitors.getMap(), client.monitors.stats()]);
  const rows = pgRows(map, stats);
  const fresh = stats.every((s) => !map.osds.find((o) => o.id === s.id)?.up || Number(s.pgStats?.[0]?.epoch ?? map.epoch) >= map.epoch);
  return fresh && rows.length > 0 && rows.every((r) => r.state === 'active+clean');
}

before(async () => {
  dir = tempDir('thrash');
  ({ path: confPath, config } = await writeClusterConfig(dir, ['a'], { tickMs: 50, osdHeartbeatIntervalMs: 300, osdGraceMs: 2500, commandTimeoutMs: 5000, monitorCallTimeoutMs: 2000 }));
  mon = new Daemon('mon.a', ['mon', '--id', 'a', '--conf', confPath], join(dir, 'mon.a.log'));
  mon.start();
  for (let id = 0; id < 5; id++) {
    const d = osdDaemon(id);
    osds.set(id, d);
    d.start();
  }
  client = new ObjectClient(config, { opTimeoutMs: 45_000 });
  await waitFor('the monitor to answer', 30_000, async () => (await client.start().then(() => true)));
  await waitForUp([0, 1, 2, 3, 4], true, 60_000);
  await client.monitors.command({ poolCreate: { name: poolName, size: 3, minSize: 2, pgNum: 32 } });
  await waitFor('the pool to be active+clean', 60_000, async () => ((await allClean()) ? true : undefined));
});

after(async () => {
  await client?.stop();
  for (const d of osds.values()) await d.kill();
  await mon?.kill();
  if (process.exitCode === undefined || process.exitCode === 0) removeDir(dir);
  else process.stderr.write(`cluster files kept in ${dir}\n`);
});

/** What an object may hold: the last acknowledged content, plus any write that has not been answered yet. */
interface Expected {
  acked: string | undefined; // md5, undefined: never written (or only by failed writes)
  maybe: Set<string>; // unanswered or failed writes: may or may not have been applied
}

interface LoadReport {
  writes: number;
  writeErrors: number;
  reads: number;
  readErrors: number;
  wrong: string[];
}

function startLoad(expected: Map<string, Expected>, random: () => number): { stop(): Promise<LoadReport> } {
  const report: LoadReport = { writes: 0, writeErrors: 0, reads: 0, readErrors: 0, wrong: [] };
  let stopping = false;
  const name = (i: number) => `obj-${i}`;
  for (let i = 0; i < objectsMax; i++) expected.set(name(i), { acked: undefined, maybe: new Set() });
  const writer = async (w: number) => {
    // Writer w owns the objects i ≡ w (mod writers): no two writes to one object at once, so the order is known.
    while (!stopping) {
      const i = w + writers * Math.floor(random() * (objectsMax / writers));
      const e = expected.get(name(i)) as Expected;
      const data = randomBytes(random() < 0.1 ? 256 * 1024 : 512 + Math.floor(random() * 16 * 1024));
      const hash = md5(data);
      e.maybe.add(hash);
      try {
        await client.put(poolName, name(i), data);
        e.acked = hash;
        e.maybe.clear();
        report.writes++;
      } catch (error) {
        if (!(error instanceof StorageError)) throw error;
        report.writeErrors++; // unanswered: stays in `maybe`, the object may hold it or the previous content
      }
    }
  };
  const reader = async () => {
    while (!stopping) {
      const key = name(Math.floor(random() * objectsMax));
      const e = expected.get(key) as Expected;
      const allowed = new Set([...(e.acked ? [e.acked] : []), ...e.maybe]);
      const mayBeAbsent = e.acked === undefined;
      try {
        const got = md5(await client.get(poolName, key));
        // Writes that started during the read are allowed too.
        for (const h of e.maybe) allowed.add(h);
        if (e.acked) allowed.add(e.acked);
        report.reads++;
        if (!allowed.has(got)) report.wrong.push(`${key}: read ${got}, expected one of ${[...allowed].join(',')}`);
      } catch (error) {
        if (error instanceof StorageError && error.code === 'NOT_FOUND') {
          report.reads++;
          if (!mayBeAbsent && e.acked !== undefined && e.maybe.size === 0) report.wrong.push(`${key}: NOT_FOUND after an acknowledged write`);
          continue;
        }
        if (!(error instanceof StorageError)) throw error;
        report.readErrors++;
      }
    }
  };
  const running = [...Array.from({ length: writers }, (_, w) => writer(w)), ...Array.from({ length: readers }, reader)];
  return {
    async stop() {
      stopping = true;
      await Promise.all(running);
      return report;
    },
  };
}

async function verifyAll(pool: string, expected: Map<string, Expected>, when: string): Promise<number> {
  let checked = 0;
  for (const [key, e] of expected) {
    const allowed = new Set([...(e.acked ? [e.acked] : []), ...e.maybe]);
    if (allowed.size === 0) continue;
    let got: string;
    try {
      got = md5(await client.get(pool, key));
    } catch (error) {
      if (error instanceof StorageError && error.code === 'NOT_FOUND' && e.acked === undefined) continue;
      throw error;
    }
    assert.ok(allowed.has(got), `${key} ${when}: read ${got}, expected one of ${[...allowed].join(',')}`);
    checked++;
  }
  return checked;
}

test('thrash: OSDs killed, restarted, marked out and in under load; nothing acknowledged is lost, every PG comes back clean', async () => {
  const seed = seedFromEnv();
  let state = seed >>> 0;
  const random = () => {
    // xorshift32: the schedule of faults replays from the seed (the load's timing does not).
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x1_0000_0000;
  };
  const expected = new Map<string, Expected>();
  const load = startLoad(expected, random);
  const started = Date.now();
  let down: number | undefined;
  let out: number | undefined;
  const actions: string[] = [];
  try {
    while (Date.now() - started < thrashMs) {
      await sleep(stepMs);
      const choices: string[] = [];
      if (down === undefined) choices.push('kill');
      else choices.push('restart');
      if (out === undefined) choices.push('out');
      else choices.push('in');
      const action = choices[Math.floor(random() * choices.length)] as string;
      const candidates = [0, 1, 2, 3, 4].filter((id) => id !== down && id !== out);
      const target = action === 'restart' ? (down as number) : action === 'in' ? (out as number) : (candidates[Math.floor(random() * candidates.length)] as number);
      actions.push(`${Math.round((Date.now() - started) / 1000)}s ${action} osd.${target}`);
      if (action === 'kill') {
        await osds.get(target)?.kill();
        down = target;
      } else if (action === 'restart') {
        osds.get(target)?.start();
        await waitForUp([target], true);
        down = undefined;
      } else if (action === 'out') {
        await client.monitors.command({ osdOut: { ids: [target], reason: 'thrash' } });
        out = target;
      } else {
        await client.monitors.command({ osdIn: { ids: [target] } });
        out = undefined;
      }
    }
  } finally {
    const report = await load.stop();
    process.stdout.write(`# thrash (seed ${seed}): ${actions.join('; ')}\n`);
    process.stdout.write(`# load: ${report.writes} writes acknowledged, ${report.writeErrors} failed; ${report.reads} reads checked, ${report.readErrors} failed\n`);
    // Every OSD back up and in before judging, so a failure here does not leave the next test a crippled cluster.
    if (down !== undefined) {
      osds.get(down)?.start();
      await waitForUp([down], true);
    }
    if (out !== undefined) await client.monitors.command({ osdIn: { ids: [out] } });
    assert.deepEqual(report.wrong, [], 'wrong reads during the thrashing');
  }
  const settleStarted = Date.now();
  await waitFor('every PG active+clean', 300_000, async () => ((await allClean()) ? true : undefined), 500);
  const settledMs = Date.now() - settleStarted;
  const checked = await verifyAll(poolName, expected, 'after the thrashing');
  process.stdout.write(`# every PG active+clean ${(settledMs / 1000).toFixed(1)} s after the last fault; ${checked} objects read back intact\n`);
  assert.ok(checked > Math.min(objectsMax / 2, 20), `only ${checked} objects were ever written`);
});

test('a sixth OSD joins the loaded cluster: each OSD ends within ±15% of its weight share and nothing is lost', async () => {
  // 256 PGs (about 128 per OSD, as operators size them) and 2,000 objects, so shares are not dominated by chance.
  await client.monitors.command({ poolCreate: { name: 'balance', size: 3, minSize: 2, pgNum: 256 } });
  const expected = new Map<string, Expected>();
  const names = Array.from({ length: 2000 }, (_, i) => `balance-${i}`);
  for (let i = 0; i < names.length; i += 32) {
    await Promise.all(
      names.slice(i, i + 32).map(async (name, j) => {
        const data = randomBytes(1024 + ((i + j) % 7) * 512);
        await client.put('balance', name, data);
        expected.set(name, { acked: md5(data), maybe: new Set() });
      }),
    );
  }
  await waitFor('every PG active+clean before osd.5', 120_000, async () => ((await allClean()) ? true : undefined), 500);
  const d = osdDaemon(5);
  osds.set(5, d);
  d.start();
  await waitForUp([5], true);
  const settleStarted = Date.now();
  await waitFor('every PG active+clean with osd.5', 300_000, async () => ((await allClean()) ? true : undefined), 500);
  // Old copies are dropped once the new ones are complete: wait for the counts to settle at size × objects.
  const totalObjects = async () => (await client.monitors.stats()).reduce((sum, s) => sum + Number(s.objects ?? 0), 0);
  let thrashObjects = 0;
  for (let cursor: string | undefined = ''; cursor !== undefined; ) {
    const page: { names: string[]; cursor: string | undefined } = await client.list(poolName, { cursor, limit: 1000 });
    thrashObjects += page.names.length;
    cursor = page.cursor;
  }
  const copiesExpected = 3 * (expected.size + thrashObjects);
  await waitFor('stray copies to be removed', 120_000, async () => ((await totalObjects()) === copiesExpected ? true : undefined), 500);
  process.stdout.write(`# rebalanced onto osd.5 in ${((Date.now() - settleStarted) / 1000).toFixed(1)} s\n`);
  const stats = await client.monitors.stats();
  const total = stats.reduce((sum, s) => sum + Number(s.objects ?? 0), 0);
  for (let id = 0; id < 6; id++) {
    const held = Number(stats.find((s) => s.id === id)?.objects ?? 0);
    const share = held / total;
    process.stdout.write(`# osd.${id}: ${held} object copies (${(share * 100).toFixed(1)}%; weight share 16.7%)\n`);
    assert.ok(Math.abs(share * 6 - 1) <= 0.15, `osd.${id} holds ${(share * 100).toFixed(1)}% of the object copies, not within ±15% of 16.7%`);
  }
  assert.equal(await verifyAll('balance', expected, 'after osd.5 joined'), expected.size);
});
