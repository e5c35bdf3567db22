/**
 * Issue 4 acceptance with real processes: `shoal up` (1 monitor, 3 OSDs, pool size 3), the object client, kill -9 of
 * one OSD and of every daemon, and the stores read back from the OSDs' own directories.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { ObjectClient, StorageError, wire, type ClusterConfig } from '../../src/index.js';
import { LevelStore } from '../../osd/store/index.js';
import { Daemon, cliPath, freePort, removeDir, runCli, tempDir, waitFor, writeClusterConfig } from '../helpers/processes.js';

let dir: string;
let config: ClusterConfig;
let confPath: string;
let up: ChildProcess | undefined;
let client: ObjectClient;
const extraDaemons: Daemon[] = [];

const setXattr = wire.ObjectOp.Kind.KIND_SETXATTR;
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

async function startUp(): Promise<void> {
  const child = spawn(process.execPath, [cliPath, 'up', '--dir', dir, '--osds', '3', '--osd-port', '0', '--no-s3', '--no-nbd'], { stdio: ['ignore', 'pipe', 'pipe'] });
  up = child;
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  await waitFor('shoal up to report the cluster', 60_000, () => (output.includes('is up') ? true : undefined));
  assert.match(output, /osd\.2: +127\.0\.0\.1:/);
}

function pidOf(name: string): number {
  return Number(readFileSync(join(dir, `${name}.pid`), 'utf8'));
}

async function killAll(): Promise<void> {
  // Every daemon at once, as a power cut would: the supervisor first so it restarts nothing.
  const pids = ['mon.a', 'osd.0', 'osd.1', 'osd.2'].filter((n) => existsSync(join(dir, `${n}.pid`))).map(pidOf);
  if (up?.pid) process.kill(up.pid, 'SIGKILL');
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await waitFor('every daemon to die', 10_000, () => (pids.every((pid) => { try { process.kill(pid, 0); return false; } catch { return true; } }) ? true : undefined));
  up = undefined;
}

before(async () => {
  dir = tempDir('objects');
  ({ path: confPath, config } = await writeClusterConfig(dir, ['a'], { tickMs: 50, osdHeartbeatIntervalMs: 300, osdGraceMs: 2500, commandTimeoutMs: 5000, monitorCallTimeoutMs: 2000 }));
  await startUp();
  client = new ObjectClient(config, { opTimeoutMs: 60_000 });
  await client.start();
});

after(async () => {
  await client?.stop();
  for (const d of extraDaemons) await d.kill();
  if (up?.pid) {
    up.kill('SIGTERM');
    await new Promise((resolve) => up?.once('exit', resolve));
  }
  if (process.exitCode === undefined || process.exitCode === 0) removeDir(dir);
  else process.stderr.write(`cluster files kept in ${dir}\n`);
});

test('shoal obj and shoal df round trip through the CLI', () => {
  const file = join(dir, 'cli-input');
  const data = randomBytes(300_000);
  writeFileSync(file, data);
  let r = runCli(['--conf', confPath, 'obj', 'put', 'data', 'cli-object', file]);
  assert.equal(r.status, 0, r.stderr);
  r = runCli(['--conf', confPath, 'obj', 'get', 'data', 'cli-object', join(dir, 'cli-output')]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(md5(readFileSync(join(dir, 'cli-output'))), md5(data));
  r = runCli(['--conf', confPath, 'obj', 'stat', 'data', 'cli-object', '--json']);
  assert.equal(JSON.parse(r.stdout).size, data.length);
  r = runCli(['--conf', confPath, 'obj', 'ls', 'data', '--json']);
  assert.ok((JSON.parse(r.stdout) as string[]).includes('cli-object'));
  r = runCli(['--conf', confPath, 'obj', 'get', 'data', 'no-such-object']);
  assert.equal(r.status, 3);
  assert.match(r.stderr, /NOT_FOUND/);
  r = runCli(['--conf', confPath, 'osd', 'tree']);
  assert.match(r.stdout, /osd\.0\s+up\s+1\.00000\s+in/);
});

test('objects of 0 B to 64 MiB round trip with stat, xattrs, omap and compare-and-swap; every copy is on disk', async () => {
  const sizes = [0, 1, 4095, 4096, 65_537, 1_048_579, 8 * 1024 * 1024, 64 * 1024 * 1024];
  const written = new Map<string, string>();
  for (const size of sizes) {
    const name = `sized-${size}`;
    const data = randomBytes(size);
    await client.put('data', name, data);
    written.set(name, md5(data));
    const back = await client.get('data', name);
    assert.equal(md5(back), md5(data), `${name} reads back`);
    assert.equal((await client.stat('data', name)).size, size);
  }
  // Ranges and writes at offsets (holes read as zeros).
  await client.write('data', 'sparse', 10_000, Buffer.from('tail'));
  const sparse = await client.get('data', 'sparse');
  assert.equal(sparse.length, 10_004);
  assert.ok(sparse.subarray(0, 10_000).every((b) => b === 0));
  assert.equal((await client.get('data', 'sized-65537', { offset: 65_530, length: 100 })).length, 7);
  await client.truncate('data', 'sparse', 5);
  assert.equal((await client.stat('data', 'sparse')).size, 5);

  // xattrs
  await client.setXattr('data', 'sized-1', 'owner', Buffer.from('alice'));
  assert.equal((await client.getXattr('data', 'sized-1', 'owner')).toString(), 'alice');
  assert.deepEqual([...(await client.getXattrs('data', 'sized-1')).keys()], ['owner']);
  await client.rmXattr('data', 'sized-1', 'owner');
  await assert.rejects(client.getXattr('data', 'sized-1', 'owner'), (e: unknown) => e instanceof StorageError && e.code === 'NOT_FOUND');

  // omap: sorted, paged
  const entries: [string, Buffer][] = Array.from({ length: 2500 }, (_, i) => [`key-${String(i).padStart(5, '0')}`, Buffer.from(`value-${i}`)]);
  for (let i = 0; i < entries.length; i += 500) await client.omapSet('data', 'index', entries.slice(i, i + 500));
  const listed: string[] = [];
  let afterKey: string | undefined;
  for (;;) {
    const page = await client.omapList('data', 'index', { ...(afterKey ? { after: afterKey } : {}), limit: 700 });
    listed.push(...page.entries.map(([k]) => k));
    if (!page.more) break;
    afterKey = page.entries.at(-1)?.[0];
  }
  assert.deepEqual(listed, entries.map(([k]) => k));
  const got = await client.omapGet('data', 'index', ['key-00007', 'missing']);
  assert.deepEqual([...got.entries()].map(([k, v]) => [k, v.toString()]), [['key-00007', 'value-7']]);
  await client.omapRemove('data', 'index', ['key-00007']);
  assert.equal((await client.omapGet('data', 'index', ['key-00007'])).size, 0);

  // compare-and-swap on an xattr, and on the version
  await client.compareAndSwap('data', 'lock', 'owner', undefined, [{ kind: setXattr, name: 'owner', value: Buffer.from('a') }]);
  await assert.rejects(
    client.compareAndSwap('data', 'lock', 'owner', undefined, [{ kind: setXattr, name: 'owner', value: Buffer.from('b') }]),
    (e: unknown) => e instanceof StorageError && e.code === 'PRECONDITION_FAILED',
  );
  await client.compareAndSwap('data', 'lock', 'owner', Buffer.from('a'), [{ kind: setXattr, name: 'owner', value: Buffer.from('c') }]);
  assert.equal((await client.getXattr('data', 'lock', 'owner')).toString(), 'c');
  const version = (await client.stat('data', 'lock')).version;
  await client.ifVersion('data', 'lock', version, [{ kind: setXattr, name: 'owner', value: Buffer.from('d') }]);
  await assert.rejects(client.ifVersion('data', 'lock', version, []), (e: unknown) => e instanceof StorageError && e.code === 'PRECONDITION_FAILED');

  // listing a pool
  const names: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.list('data', { ...(cursor ? { cursor } : {}), limit: 3 });
    names.push(...page.names);
    cursor = page.cursor;
  } while (cursor);
  for (const name of written.keys()) assert.ok(names.includes(name), `${name} listed`);

  await client.remove('data', 'sized-4096');
  await assert.rejects(client.get('data', 'sized-4096'), (e: unknown) => e instanceof StorageError && e.code === 'NOT_FOUND');
  written.delete('sized-4096');

  // Each copy, read from each OSD's own store after a clean stop.
  await client.stop();
  up?.kill('SIGTERM');
  await new Promise((resolve) => up?.once('exit', resolve));
  up = undefined;
  const pool = 1;
  for (const osd of [0, 1, 2]) {
    const store = new LevelStore({ dir: join(dir, `osd.${osd}`) });
    await store.start();
    try {
      for (const [name, hash] of written) {
        const collections = await store.listCollections();
        let found: Buffer | undefined;
        for (const pg of collections.filter((c) => c.startsWith(`${pool}.`))) {
          if (await store.exists({ pg, name })) found = await store.read({ pg, name });
        }
        assert.ok(found, `osd.${osd} holds ${name}`);
        assert.equal(md5(found), hash, `osd.${osd}'s copy of ${name}`);
      }
    } finally {
      await store.stop();
    }
  }
  await startUp();
  client = new ObjectClient(config, { opTimeoutMs: 60_000 });
  await client.start();
});

test('durability: kill -9 one OSD under concurrent writes, then every daemon at once; every acknowledged write reads back', async () => {
  const acknowledged = new Map<string, string>();
  let stop = false;
  let sequence = 0;
  const writer = async () => {
    while (!stop) {
      const name = `durable-${sequence++ % 400}`;
      const data = randomBytes(1024 + (sequence % 7) * 4096);
      try {
        await client.put('data', name, data);
        acknowledged.set(name, md5(data));
      } catch (error) {
        // Not acknowledged: it may or may not have been applied, so the object is excluded from the check.
        acknowledged.delete(name);
        if (!(error instanceof StorageError)) throw error;
      }
    }
  };
  const writers = Array.from({ length: 16 }, writer);
  await waitFor('some writes', 20_000, () => (acknowledged.size >= 100 ? true : undefined));
  process.kill(pidOf('osd.1'), 'SIGKILL');
  const before = acknowledged.size;
  await waitFor('writes to continue without osd.1', 60_000, () => (sequence > before + 300 ? true : undefined));
  const osd1 = new Daemon('osd.1', ['osd', '--id', '1', '--conf', confPath, '--data', join(dir, 'osd.1'), '--listen', '127.0.0.1:0', '--host', 'node-1'], join(dir, 'osd.1.restarted.log'));
  extraDaemons.push(osd1);
  osd1.start();
  await waitFor('osd.1 back up', 30_000, async () => (client.map().osds.find((o) => o.id === 1)?.up ? true : undefined));
  await new Promise((resolve) => setTimeout(resolve, 2000));
  stop = true;
  await Promise.all(writers);
  for (const [name, hash] of acknowledged) assert.equal(md5(await client.get('data', name)), hash, `${name} after osd.1 returned`);

  // Every daemon killed at once, then the cluster started again on the same data.
  const snapshot = new Map(acknowledged);
  await client.stop();
  await osd1.kill();
  await killAll();
  await startUp();
  client = new ObjectClient(config, { opTimeoutMs: 60_000 });
  await client.start();
  for (const [name, hash] of snapshot) assert.equal(md5(await client.get('data', name)), hash, `${name} after kill -9 of every daemon`);
});
