/**
 * Issue 9 acceptance with real processes: `shoal up` with 8 OSDs (one host each), an erasure-coded pool 4+2 made
 * with `shoal pool create --ec 4,2`, the object client. Objects of 0 B to 64 MiB and random partial overwrites
 * against a reference buffer; kill -9 of two OSDs (every object still reads back, decoding missing shards); marking
 * them out (their shards are rebuilt on the two spare OSDs and a deep scrub of every PG is clean); kill -9 of a
 * primary in the middle of overwrites. 8 OSDs rather than 6: with one shard per host, "rebuilt elsewhere" needs
 * hosts beyond the k+m = 6 the pool uses.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { ObjectClient, Random, StorageError, placementFor, seedFromEnv, type ClusterConfig } from '../../src/index.js';
import { cliPath, removeDir, runCli, tempDir, waitFor, writeClusterConfig } from '../helpers/processes.js';

const osdCount = 8;
const pool = 'ec';
const pgNum = 8;
const MiB = 1024 * 1024;
let dir: string;
let config: ClusterConfig;
let confPath: string;
let up: ChildProcess | undefined;
let client: ObjectClient;
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const seed = seedFromEnv();
process.stdout.write(`integration/erasure: seed=${seed} (rerun with SHOAL_SEED=${seed})\n`);
const random = new Random(seed);

/** What every object should hold: the reference the test compares against. */
const reference = new Map<string, Buffer>();

function pidOf(name: string): number {
  return Number(readFileSync(join(dir, `${name}.pid`), 'utf8'));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function kill9(osd: number): Promise<void> {
  const pid = pidOf(`osd.${osd}`);
  process.kill(pid, 'SIGKILL');
  await waitFor(`osd.${osd} (pid ${pid}) to die`, 10_000, () => (alive(pid) ? undefined : true));
}

function cli(...args: string[]): string {
  const r = runCli(['--conf', confPath, ...args]);
  assert.equal(r.status, 0, `shoal ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function checkAll(what: string): Promise<void> {
  for (const [name, data] of reference) {
    const back = await client.get(pool, name);
    assert.equal(back.length, data.length, `${what}: ${name} size`);
    assert.equal(md5(back), md5(data), `${what}: ${name} content`);
  }
}

async function pgStates(): Promise<string[]> {
  return (JSON.parse(cli('pg', 'ls', '--pool', pool, '--json')) as { state: string }[]).map((r) => r.state);
}

async function waitActiveClean(what: string): Promise<void> {
  await waitFor(what, 120_000, async () => {
    const states = await pgStates();
    return states.length === pgNum && states.every((s) => s === 'active+clean') ? true : undefined;
  }, 500);
}

before(async () => {
  dir = tempDir('erasure');
  ({ path: confPath, config } = await writeClusterConfig(dir, ['a'], { tickMs: 50, osdHeartbeatIntervalMs: 500, osdGraceMs: 5000, commandTimeoutMs: 5000, monitorCallTimeoutMs: 2000 }));
  const child = spawn(process.execPath, [cliPath, 'up', '--dir', dir, '--osds', String(osdCount), '--osd-port', '0', '--no-s3', '--no-nbd', '--no-pool'], { stdio: ['ignore', 'pipe', 'pipe'] });
  up = child;
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  await waitFor('shoal up to report the cluster', 90_000, () => (output.includes('is up') ? true : undefined));
  cli('pool', 'create', pool, '--ec', '4,2', '--min-size', '4', '--pg-num', String(pgNum), '--stripe-unit', '4K');
  client = new ObjectClient(config, { opTimeoutMs: 60_000 });
  await client.start();
  await waitFor('the pool in the client map', 10_000, () => (client.map().pools.some((p) => p.name === pool) ? true : undefined));
  await waitActiveClean('every PG of the EC pool active+clean');
});

after(async () => {
  await client?.stop();
  if (up?.pid) {
    up.kill('SIGTERM');
    await new Promise((resolve) => up?.once('exit', resolve));
  }
  // Anything `shoal up` did not stop (it restarts nothing we killed): by pid.
  for (let i = 0; i < osdCount; i++) {
    const file = join(dir, `osd.${i}.pid`);
    if (existsSync(file) && alive(pidOf(`osd.${i}`))) process.kill(pidOf(`osd.${i}`), 'SIGKILL');
  }
  if (process.exitCode === undefined || process.exitCode === 0) removeDir(dir);
  else process.stderr.write(`cluster files kept in ${dir}\n`);
});

test('EC 4+2: objects of 0 B to 64 MiB round trip; appends and random partial overwrites match a reference buffer', async () => {
  const p = client.map().pools.find((x) => x.name === pool);
  assert.equal(p?.type, 'erasure');
  assert.equal(p?.ecK, 4);
  assert.equal(p?.ecM, 2);
  const sizes = [0, 1, 4095, 4096, 16_383, 16_384, 16_385, 65_537, 1_048_579, 8 * MiB + 3, 64 * MiB];
  for (const size of sizes) {
    const data = Buffer.from(random.bytes(size));
    await client.put(pool, `sized-${size}`, data);
    reference.set(`sized-${size}`, data);
    const back = await client.get(pool, `sized-${size}`);
    assert.equal(md5(back), md5(data), `sized-${size} reads back`);
    assert.equal((await client.stat(pool, `sized-${size}`)).size, size);
  }
  // Ranges inside and across stripes.
  const big = reference.get(`sized-${1_048_579}`) as Buffer;
  for (const [offset, length] of [[0, 10], [4090, 20], [16_380, 8], [1_048_570, 100], [500_000, 70_000]] as const) {
    assert.deepEqual(await client.get(pool, `sized-${1_048_579}`, { offset, length }), big.subarray(offset, offset + length), `range ${offset}+${length}`);
  }
  // Appends and random partial overwrites, within and past the end, against a reference buffer.
  let ref = Buffer.alloc(0);
  await client.put(pool, 'rmw', ref);
  for (let i = 0; i < 60; i++) {
    const offset = random.int(0, ref.length + 20_000);
    const data = Buffer.from(random.bytes(random.int(1, i % 10 === 0 ? 200_000 : 9_000)));
    await client.write(pool, 'rmw', offset, data);
    const grown = Buffer.alloc(Math.max(ref.length, offset + data.length));
    ref.copy(grown);
    data.copy(grown, offset);
    ref = grown;
    if (i % 15 === 14) {
      const cut = random.int(0, ref.length);
      await client.truncate(pool, 'rmw', cut);
      ref = Buffer.from(ref.subarray(0, cut));
    }
  }
  assert.equal(md5(await client.get(pool, 'rmw')), md5(ref), 'random overwrites match the reference');
  reference.set('rmw', ref);
  // xattrs ride on every shard; omap is refused (as in Ceph's EC pools).
  await client.setXattr(pool, 'sized-1', 'owner', Buffer.from('alice'));
  assert.equal((await client.getXattr(pool, 'sized-1', 'owner')).toString(), 'alice');
  await assert.rejects(client.omapSet(pool, 'sized-1', [['k', Buffer.from('v')]]), (e: unknown) => e instanceof StorageError && e.code === 'INVALID_ARGUMENT');
  await client.remove(pool, 'sized-0');
  reference.delete('sized-0');
  await assert.rejects(client.get(pool, 'sized-0'), (e: unknown) => e instanceof StorageError && e.code === 'NOT_FOUND');
  // shoal df: logical bytes stored, raw = x1.5 for 4+2 (usage is counted by each PG's primary and reported with
  // its heartbeat, so wait for it to settle: bytes and objects both, since the removed object held 0 bytes and its
  // PG may report after the bytes already add up).
  const stored = [...reference.values()].reduce((n, b) => n + b.length, 0);
  const df = await waitFor('shoal df to count the EC pool', 30_000, () => {
    const report = JSON.parse(cli('df', '--json')) as { pools: { name: string; storedBytes: number; rawBytes: number; objects: number }[] };
    const row = report.pools.find((x) => x.name === pool);
    return row && row.storedBytes === stored && row.objects === reference.size ? row : undefined;
  }, 500);
  assert.equal(df.rawBytes, Math.round(stored * 1.5));
  // A healthy pool deep-scrubs clean.
  for (let s = 0; s < pgNum; s++) assert.deepEqual((await client.scrubPg(pool, s)).inconsistent, [], `PG ${s} deep scrub`);
});

test('EC 4+2: kill -9 of two OSDs: every object reads back; marked out, their shards are rebuilt elsewhere and deep scrub is clean', async () => {
  // Two OSDs that hold shards of the 64 MiB object, one of them its primary.
  const mapping = placementFor(client.map()).mapObject(client.map().pools.find((x) => x.name === pool)?.id ?? 0, `sized-${64 * MiB}`);
  const victims = [mapping.up[0] as number, mapping.up[3] as number];
  // Two failures on a healthy pool (m = 2): recovery from the first test has finished everywhere.
  await waitActiveClean('every PG active+clean before the kills');
  for (const osd of victims) await kill9(osd);
  await checkAll('two OSDs killed');
  await waitFor('the monitors to mark both OSDs down', 30_000, () => (victims.every((v) => client.map().osds.find((o) => o.id === v)?.up === false) ? true : undefined), 200);
  const epoch = client.map().epoch;
  cli('osd', 'out', ...victims.map(String));
  await waitFor('the client to see both OSDs out', 10_000, () => (client.map().epoch > epoch && victims.every((v) => client.map().osds.find((o) => o.id === v)?.in === false) ? true : undefined), 50);
  // Deep scrubs asked for at once, while the PGs re-peer and rebuild shards on the OSDs that replace the dead ones:
  // a scrub compares the members of one interval only, so none reports a member that is still being rebuilt.
  const early = await Promise.all(Array.from({ length: pgNum }, (_, s) => client.scrubPg(pool, s)));
  early.forEach((report, s) => assert.deepEqual(report.inconsistent, [], `PG ${s}: deep scrub asked for while rebuilding`));
  await waitActiveClean('PGs active+clean again after the two OSDs are out');
  const after = placementFor(client.map());
  for (let s = 0; s < pgNum; s++) {
    const up = after.mapPg({ pool: client.map().pools.find((x) => x.name === pool)?.id ?? 0, seed: s }).up;
    assert.ok(victims.every((v) => !up.includes(v)), `PG ${s} no longer maps to the dead OSDs`);
    const report = await client.scrubPg(pool, s);
    assert.deepEqual(report.inconsistent, [], `PG ${s}: deep scrub after rebuilding`);
  }
  await checkAll('after the rebuild');
});

test('EC 4+2: random partial overwrites match a reference buffer across a kill -9 of the primary mid-overwrite', async (t) => {
  const poolId = client.map().pools.find((x) => x.name === pool)?.id ?? 0;
  const name = 'crash-rmw';
  let ref = Buffer.from(random.bytes(6 * MiB + 12_345));
  await client.put(pool, name, ref);
  const primary = placementFor(client.map()).mapObject(poolId, name).primary;
  for (let i = 0; i < 14; i++) {
    const offset = random.int(0, ref.length + 100_000);
    const data = Buffer.from(random.bytes(random.int(1, 3 * MiB)));
    const write = client.write(pool, name, offset, data);
    // Kill the primary while the eighth overwrite is on its way to the members (its shards partly sent).
    if (i === 7) {
      await new Promise((resolve) => setTimeout(resolve, random.int(5, 60)));
      await kill9(primary);
    }
    await write;
    const grown = Buffer.alloc(Math.max(ref.length, offset + data.length));
    ref.copy(grown);
    data.copy(grown, offset);
    ref = grown;
  }
  assert.equal(md5(await client.get(pool, name)), md5(ref), 'the object matches the reference after the primary died mid-overwrite');
  reference.set(name, ref);
  await checkAll('after the primary was killed');
  const pg = placementFor(client.map()).objectToPg(poolId, name);
  assert.deepEqual((await client.scrubPg(pool, pg.seed)).inconsistent, [], 'deep scrub of its PG is clean (the dead primary leaves a hole)');
  // What peering did with the change in flight: undone on the members that had it (fewer than k), or completed.
  const logs = Array.from({ length: osdCount }, (_, i) => join(dir, `osd.${i}.log`)).filter(existsSync).map((f) => readFileSync(f, 'utf8'));
  const undone = logs.reduce((n, text) => n + (text.match(/rolled back a shard change/g)?.length ?? 0), 0);
  t.diagnostic(`shard changes rolled back by peering: ${undone}`);
});
