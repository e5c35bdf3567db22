/**
 * OSDs started in-process (real LevelDB stores on disk, real sockets on 127.0.0.1) so a test can reach into one
 * OSD's store: bit rot caught by checksums and repaired from a replica; hostile bytes and requests on the wire.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ObjectClient, Random, StorageError, createLogger, osdCodecs, placementFor, systemClock, pgIdToString, type ClusterConfig, type LogLevel } from '../../src/index.js';
import { MessengerClient } from '../../src/net/index.js';
import { createMonitor, type Monitor } from '../../monitor/monitor.js';
import { createOsd, type Osd } from '../../osd/osd.js';
import { LevelStore } from '../../osd/store/index.js';
import { cliPath, removeDir, tempDir, waitFor, writeClusterConfig } from '../helpers/processes.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

let dir: string;
let config: ClusterConfig;
let monitor: Monitor;
const osds: Osd[] = [];
const stores: LevelStore[] = [];
let client: ObjectClient;
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const logLevel = (process.env['SHOAL_TEST_LOG'] ?? 'error') as LogLevel;

/** `shoal pg ls --json` as a child process (asynchronously: the OSDs it asks about run in this process). */
async function pgStates(pool: string): Promise<string[]> {
  const { stdout } = await promisify(execFile)(process.execPath, [cliPath, '--conf', join(dir, 'shoal.conf'), 'pg', 'ls', '--pool', pool, '--json']);
  return (JSON.parse(stdout) as { state: string }[]).map((r) => r.state);
}

const all = (states: string[], state: string) => (states.length > 0 && states.every((s) => s === state) ? true : undefined);

/** PGs below min_size fail their waiting ops after opWaitMs (short here, so the test need not wait 30 s). */
const pgSettings = { opWaitMs: 1500 };

async function startOsd(id: number, store: LevelStore): Promise<Osd> {
  const logger = createLogger({ name: `osd.${id}`, level: logLevel });
  const osd = createOsd({ id, cluster: config, host: `node-${id}`, listenAddress: '127.0.0.1:0', pg: pgSettings }, { store, clock: systemClock, logger });
  await osd.start();
  return osd;
}

before(async () => {
  dir = tempDir('osd-inproc');
  ({ config } = await writeClusterConfig(dir, ['a'], { tickMs: 50, osdHeartbeatIntervalMs: 300, osdGraceMs: 3000, monitorCallTimeoutMs: 2000 }));
  monitor = createMonitor({ id: 'a', cluster: config, dataDir: join(dir, 'mon.a') }, { clock: systemClock, random: new Random(1), logger: createLogger({ name: 'mon.a', level: logLevel }) });
  await monitor.start();
  for (let id = 0; id < 3; id++) {
    const store = new LevelStore({ dir: join(dir, `osd.${id}`), logger: createLogger({ name: `osd.${id}`, level: logLevel }) });
    stores.push(store);
    osds.push(await startOsd(id, store));
  }
  client = new ObjectClient(config, { opTimeoutMs: 30_000 });
  await client.start();
  await client.monitors.command({ poolCreate: { name: 'data', pgNum: 16 } });
  await waitFor('the pool in the client map', 10_000, () => (client.map().pools.length > 0 ? true : undefined));
});

after(async () => {
  await client?.stop();
  for (const osd of osds) await osd.stop();
  await monitor?.stop();
  removeDir(dir);
});

test('a byte flipped on the primary disk is caught (CHECKSUM_MISMATCH) and the client still reads correct data', async () => {
  const names = Array.from({ length: 10 }, (_, i) => `rot-${i}`);
  const contents = new Map<string, Buffer>();
  for (const name of names) {
    const data = randomBytes(100_000 + 4096 * contents.size);
    contents.set(name, data);
    await client.put('data', name, data);
  }
  for (const name of names) {
    const mapping = placementFor(client.map()).mapObject(1, name);
    const primary = mapping.primary;
    const store = stores[primary] as LevelStore;
    const oid = { pg: pgIdToString(mapping.pgId), name };
    await store.corrupt(oid, { kind: 'flip', offset: 4097 });
    await assert.rejects(store.read(oid), (e: unknown) => e instanceof StorageError && e.code === 'CHECKSUM_MISMATCH', `${name}: the store itself refuses rotten data`);
    const read = await client.get('data', name);
    assert.equal(md5(read), md5(contents.get(name) as Buffer), `${name}: the client gets the good copy`);
    assert.equal(md5(await store.read(oid)), md5(contents.get(name) as Buffer), `${name}: the primary's copy was repaired`);
  }
});

test('hostile input on the data plane: garbage, absurd lengths, unknown ops, bad headers and stale placement get errors; the OSD keeps serving', async () => {
  const target = osds[0] as Osd;
  const [host, port] = [target.address.slice(0, target.address.lastIndexOf(':')), Number(target.address.slice(target.address.lastIndexOf(':') + 1))];
  const random = new Random(42);
  const blobs = [random.bytes(64), Buffer.alloc(32, 0xff), Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.concat([Buffer.from([0x53, 0x48]), Buffer.alloc(12, 0xff)])];
  for (const blob of blobs) {
    await new Promise<void>((resolve) => {
      const socket = connect(port, host, () => socket.write(blob));
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
      setTimeout(() => (socket.destroy(), resolve()), 2000);
    });
  }
  const raw = new MessengerClient({ address: target.address });
  try {
    await assert.rejects(raw.request('no-such-op', new Uint8Array(), undefined, { timeoutMs: 5000 }), (e: unknown) => e instanceof StorageError && e.code === 'INVALID_ARGUMENT');
    await assert.rejects(raw.request('op', Buffer.from([0xff, 0xff, 0xff, 0x0f]), undefined, { timeoutMs: 5000 }), (e: unknown) => e instanceof StorageError && e.code === 'CORRUPT_DATA');
    // An object sent to the wrong PG (as a client with a stale map would): refused, nothing written.
    const map = client.map();
    const mapping = placementFor(map).mapObject(1, 'misplaced');
    const primary = osds.find((o) => o.id === mapping.primary) as Osd;
    const wrongSeed = (mapping.pgId.seed + 1) % 16;
    const header = osdCodecs.opRequest.encode({ pool: 1, pgSeed: wrongSeed, object: 'misplaced', epoch: map.epoch, reqid: { client: 'hostile', tid: 1 }, ops: [{ kind: 3, dataOffset: 0, dataLength: 3 }], write: true });
    const direct = new MessengerClient({ address: primary.address });
    try {
      await assert.rejects(direct.request('op', header, Buffer.from('abc'), { timeoutMs: 5000 }), (e: unknown) => e instanceof StorageError && (e.code === 'STALE_EPOCH' || e.code === 'NOT_PRIMARY'));
      // Data offsets outside the payload.
      const good = osdCodecs.opRequest.encode({ pool: 1, pgSeed: mapping.pgId.seed, object: 'misplaced', epoch: map.epoch, reqid: { client: 'hostile', tid: 2 }, ops: [{ kind: 3, dataOffset: 10, dataLength: 1_000_000 }], write: true });
      await assert.rejects(direct.request('op', good, Buffer.from('abc'), { timeoutMs: 5000 }), (e: unknown) => e instanceof StorageError && e.code === 'INVALID_ARGUMENT');
    } finally {
      direct.close();
    }
    await assert.rejects(client.get('data', 'misplaced'), (e: unknown) => e instanceof StorageError && e.code === 'NOT_FOUND');
  } finally {
    raw.close();
  }
  // A write beyond the largest object is refused with TOO_LARGE, and nothing is acknowledged or stored.
  await assert.rejects(client.write('data', 'huge', 1024 * 1024 * 1024, Buffer.from('x')), (e: unknown) => e instanceof StorageError && e.code === 'TOO_LARGE');
  await assert.rejects(client.stat('data', 'huge'), (e: unknown) => e instanceof StorageError && e.code === 'NOT_FOUND');
  await client.put('data', 'still-serving', Buffer.from('yes'));
  assert.equal((await client.get('data', 'still-serving')).toString(), 'yes');
});

test('watch/notify: every watcher gets the notify and its reply reaches the notifier; a stopped watcher no longer counts', async () => {
  await client.put('data', 'bell', Buffer.from('ring'));
  const other = new ObjectClient(config, { opTimeoutMs: 30_000 });
  await other.start();
  try {
    const seen: string[] = [];
    const w1 = await client.watch('data', 'bell', (n) => {
      seen.push(`w1:${n.payload.toString()}`);
      return Buffer.from('one');
    });
    const w2 = await other.watch('data', 'bell', (n) => {
      seen.push(`w2:${n.payload.toString()}`);
      return Buffer.from('two');
    });
    const result = await other.notify('data', 'bell', Buffer.from('hello'), 5000);
    assert.deepEqual([...result.acks.values()].map((v) => v.toString()).sort(), ['one', 'two']);
    assert.deepEqual(result.timeouts, []);
    assert.deepEqual(seen.sort(), ['w1:hello', 'w2:hello']);
    await w2.stop();
    const second = await client.notify('data', 'bell', Buffer.from('again'), 5000);
    assert.deepEqual([...second.acks.values()].map((v) => v.toString()), ['one']);
    await w1.stop();
    const none = await client.notify('data', 'bell', Buffer.from('nobody'), 1000);
    assert.equal(none.acks.size + none.timeouts.length, 0);
  } finally {
    await other.stop();
  }
});

test('fewer than min_size members up: I/O on the PG waits, then fails with INSUFFICIENT_REPLICAS; a member back and it resumes', async () => {
  await client.monitors.command({ poolCreate: { name: 'strict', size: 3, minSize: 3, pgNum: 8 } });
  await waitFor('pool strict in the client map', 10_000, () => (client.map().pools.some((p) => p.name === 'strict') ? true : undefined));
  const before = randomBytes(5000);
  await client.put('strict', 'kept', before);
  const victim = 2;
  await (osds[victim] as Osd).stop();
  await waitFor(`osd.${victim} down in the client map`, 10_000, () => (client.map().osds.find((o) => o.id === victim)?.up === false ? true : undefined));
  // What `shoal pg ls` shows meanwhile: size-3 PGs with two members serve on, degraded; min_size-3 PGs cannot.
  await waitFor('data PGs active+degraded', 15_000, async () => all(await pgStates('data'), 'active+degraded'));
  await waitFor('strict PGs undersized', 15_000, async () => all(await pgStates('strict'), 'undersized'));
  const impatient = new ObjectClient(config, { opTimeoutMs: 4000 });
  await impatient.start();
  try {
    await assert.rejects(impatient.put('strict', 'blocked', randomBytes(100)), (e: unknown) => {
      assert.ok(e instanceof StorageError, String(e));
      assert.equal(e.code, 'INSUFFICIENT_REPLICAS', e.message);
      assert.match(e.message, /min_size 3/);
      return true;
    });
    await impatient.put('data', 'still-writable', randomBytes(100)); // size 3, min_size 2: two members are enough
  } finally {
    await impatient.stop();
  }
  const store = new LevelStore({ dir: join(dir, `osd.${victim}`), logger: createLogger({ name: `osd.${victim}`, level: logLevel }) });
  stores[victim] = store;
  osds[victim] = await startOsd(victim, store);
  const after = randomBytes(7000);
  await client.put('strict', 'after', after);
  assert.equal(md5(await client.get('strict', 'after')), md5(after));
  assert.equal(md5(await client.get('strict', 'kept')), md5(before));
  await waitFor('every PG active+clean again', 30_000, async () => all([...(await pgStates('data')), ...(await pgStates('strict'))], 'active+clean'));
});

test('omap list pages by bytes as well as by count: 300 entries of 10 KiB come back in several answers, all of them, in order', async () => {
  const value = randomBytes(10 * 1024);
  const keys = Array.from({ length: 300 }, (_, i) => `k${String(i).padStart(4, '0')}`);
  for (let i = 0; i < keys.length; i += 50) await client.omapSet('data', 'big-omap', keys.slice(i, i + 50).map((k) => [k, value] as [string, Buffer]));
  const seen: string[] = [];
  let after = '';
  let answers = 0;
  for (;;) {
    const page = await client.omapList('data', 'big-omap', { after, limit: 1000 });
    answers++;
    seen.push(...page.entries.map(([k]) => k));
    for (const [, v] of page.entries) assert.equal(md5(v), md5(value));
    if (!page.more) break;
    after = page.entries.at(-1)?.[0] ?? '';
  }
  assert.deepEqual(seen, keys);
  assert.ok(answers >= 3, `a 3 MB listing takes several answers (took ${answers})`);
});

test('deep scrub: 10 objects rotted on one OSD are reported exactly, shoal pg repair rewrites them, a second scrub is clean', async () => {
  const names = Array.from({ length: 40 }, (_, i) => `scrub-${i}`);
  const contents = new Map(names.map((n) => [n, randomBytes(100_000 + 7 * names.indexOf(n))]));
  for (const name of names) await client.put('data', name, contents.get(name) as Buffer);
  const victim = 1;
  const rotted = names.filter((_, i) => i % 4 === 0); // 10 objects
  const placement = placementFor(client.map());
  for (const name of rotted) {
    const mapping = placement.mapObject(1, name);
    await (stores[victim] as LevelStore).corrupt({ pg: pgIdToString(mapping.pgId), name }, { kind: 'flip', offset: 5000 });
  }
  const pool = client.map().pools.find((p) => p.name === 'data');
  assert.ok(pool);
  const scrubAll = async () => {
    const found = new Map<string, number[]>();
    for (let seed = 0; seed < pool.pgNum; seed++) {
      const report = await client.scrubPg('data', seed);
      for (const i of report.inconsistent) found.set(i.object ?? "", i.osds ?? []);
    }
    return found;
  };
  for (let seed = 0; seed < pool.pgNum; seed++) {
    assert.equal((await client.scrubPg('data', seed, false, true)).inconsistent.length, 0, 'a light scrub compares versions only: rot is invisible to it');
  }
  const first = await scrubAll();
  assert.deepEqual([...first.keys()].sort(), [...rotted].sort(), 'exactly the rotted objects are reported');
  for (const osds of first.values()) assert.deepEqual(osds, [victim], 'and only the rotted copy');
  const pgsToRepair = new Set(rotted.map((n) => pgIdToString(placement.mapObject(1, n).pgId)));
  for (const pgid of pgsToRepair) {
    const { stdout } = await promisify(execFile)(process.execPath, [cliPath, '--conf', join(dir, 'shoal.conf'), 'pg', 'repair', pgid, '--json']);
    const [report] = JSON.parse(stdout) as { pg: string; repaired: number; inconsistent: unknown[] }[];
    assert.equal(report?.pg, pgid);
    assert.ok(report.inconsistent.length > 0 && report.repaired === report.inconsistent.length, `${pgid}: every inconsistency repaired`);
  }
  assert.equal((await scrubAll()).size, 0, 'a second deep scrub is clean');
  let pgsScrubbed = 0;
  for (const osd of [0, 1, 2]) {
    const { stdout } = await promisify(execFile)(process.execPath, [cliPath, '--conf', join(dir, 'shoal.conf'), 'osd', 'deep-scrub', String(osd), '--json']);
    const reports = JSON.parse(stdout) as { inconsistent: unknown[] }[];
    pgsScrubbed += reports.length;
    assert.ok(reports.every((r) => r.inconsistent.length === 0), `osd.${osd}'s PGs are clean`);
  }
  assert.equal(pgsScrubbed, client.map().pools.reduce((n, p) => n + p.pgNum, 0), 'shoal osd deep-scrub covers every PG once over all OSDs');
  for (const name of rotted) {
    const oid = { pg: pgIdToString(placement.mapObject(1, name).pgId), name };
    assert.equal(md5(await (stores[victim] as LevelStore).read(oid)), md5(contents.get(name) as Buffer), `${name}: osd.${victim}'s copy was rewritten`);
  }
});
