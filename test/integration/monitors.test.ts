/**
 * Issue 3 acceptance with real processes: three `shoal mon` daemons on 127.0.0.1, driven through the CLI and the
 * monitor client, with kill -9 of the leader, loss of the majority, full restarts and a long command stream.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { MonitorClient, StorageError, monitorRpc, type ClusterConfig } from '../../src/index.js';
import { Daemon, removeDir, runCli, tempDir, waitFor, writeClusterConfig } from '../helpers/processes.js';

const names = ['a', 'b', 'c'];
let dir: string;
let confPath: string;
let config: ClusterConfig;
let monitors: Map<string, Daemon>;
let client: MonitorClient;

async function leaderName(): Promise<string> {
  return waitFor('a leader', 10_000, async () => {
    const statuses = await client.statusAll();
    return statuses.find((s) => s.status?.role === 'leader')?.name;
  });
}

async function poolNames(): Promise<string[]> {
  return (await client.getMap()).pools.map((p) => p.name);
}

before(async () => {
  dir = tempDir('mons');
  ({ path: confPath, config } = await writeClusterConfig(dir, names, { tickMs: 50, electionTicks: 10, commandTimeoutMs: 3000, monitorCallTimeoutMs: 1000, osdGraceMs: 1500, downOutIntervalMs: 2000 }, 200));
  monitors = new Map(names.map((n) => [n, new Daemon(`mon.${n}`, ['mon', '--id', n, '--conf', confPath, '--log-level', 'debug'], join(dir, `mon.${n}.log`))]));
  for (const m of monitors.values()) m.start();
  client = new MonitorClient(config.monitors, { callTimeoutMs: 1000, commandTimeoutMs: 3000 });
  await waitFor('the map to be initialised', 20_000, async () => ((await client.getMap()).epoch >= 1 ? true : undefined));
});

after(async () => {
  client?.close();
  for (const m of monitors?.values() ?? []) await m.kill();
  if (process.exitCode === undefined || process.exitCode === 0) removeDir(dir);
  else process.stderr.write(`monitor logs kept in ${dir}\n`);
});

test('CLI: status, mon stat, pool create/ls/set/rm, osd create/out/in/reweight/tree through the quorum', () => {
  const cli = (...args: string[]) => runCli(['--conf', confPath, ...args]);
  let r = cli('pool', 'create', 'rbd', '--pg-num', '16');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /pool rbd created/);
  r = cli('osd', 'create', '--host', 'node1');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(cli('osd', 'out', '0').status, 0);
  assert.equal(cli('osd', 'in', 'osd.0').status, 0);
  assert.equal(cli('osd', 'reweight', '0', '0.5').status, 0);
  r = cli('osd', 'tree');
  assert.match(r.stdout, /host node1/);
  assert.match(r.stdout, /osd\.0\s+down\s+0\.50000\s+in/);
  r = cli('pool', 'ls');
  assert.match(r.stdout, /pool 1 'rbd' replicated size 3 min_size 2 pg_num 16 rule replicated_rule/);
  r = cli('status', '--json');
  assert.equal(r.status, 0, r.stderr);
  const status = JSON.parse(r.stdout) as { monitors: { role: string }[]; osds: { total: number }; pools: number };
  assert.equal(status.monitors.filter((m) => m.role === 'leader').length, 1);
  assert.equal(status.osds.total, 1);
  r = cli('mon', 'stat');
  assert.equal(r.stdout.trim().split('\n').length, 3);
  assert.match(r.stdout, /leader/);
  // Bad input: a clear error, a non-zero exit, and no new epoch.
  const epochBefore = JSON.parse(cli('status', '--json').stdout).epoch as number;
  for (const [args, pattern] of [
    [['pool', 'rm', 'nope'], /NOT_FOUND/],
    [['pool', 'create', 'ec', '--ec', '8,4'], /INVALID_ARGUMENT.*failure domains|INVALID_ARGUMENT/],
    [['pool', 'create', 'ec2', '--ec', '0,2'], /INVALID_ARGUMENT/],
    [['osd', 'reweight', '0', '-1'], /INVALID_ARGUMENT/],
    [['crush', 'set-weight', 'osd.0', '-2'], /INVALID_ARGUMENT/],
    [['pool', 'set', 'rbd', 'pg_num', '4'], /only grow/],
    [['osd', 'set', 'nonsense'], /unknown flag/],
  ] as [string[], RegExp][]) {
    r = cli(...args);
    assert.notEqual(r.status, 0, args.join(' '));
    assert.match(r.stderr, pattern, args.join(' '));
  }
  assert.equal(JSON.parse(cli('status', '--json').stdout).epoch, epochBefore, 'rejected commands leave the map alone');
});

test('malformed requests to a monitor get an error; the monitor keeps serving and the map is unchanged', async () => {
  const epoch = (await client.getMap()).epoch;
  const address = config.monitors[0]?.address ?? '';
  const raw = new grpc.Client(address, grpc.credentials.createInsecure());
  const send = (path: string, bytes: Buffer) =>
    new Promise<grpc.ServiceError | null>((resolve) =>
      raw.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, bytes, { deadline: Date.now() + 3000 }, (error) => resolve(error)),
    );
  try {
    const garbage = [Buffer.from([0xff, 0xff, 0xff]), Buffer.alloc(1000, 0x0a), Buffer.from('{"json": true}')];
    for (const bytes of garbage) {
      const error = await send(monitorRpc.command.path, bytes);
      assert.ok(error, 'garbage command is refused');
      assert.match(String(error.metadata.get('shoal-code')[0]), /CORRUPT_DATA|INVALID_ARGUMENT/);
    }
    // A well-formed batch of undecodable Raft messages is dropped, not fatal.
    const batch = Buffer.from(monitorRpc.raft.request.encode({ messages: [Buffer.from([1, 2, 3]), Buffer.alloc(64, 0xee)] }));
    assert.equal(await send(monitorRpc.raft.path, batch), null);
    assert.equal(await send('/shoal.Monitor/NoSuchMethod', Buffer.alloc(0)).then((e) => e?.code), grpc.status.UNIMPLEMENTED);
  } finally {
    raw.close();
  }
  assert.equal((await client.getMap()).epoch, epoch);
  const statuses = await client.statusAll();
  assert.ok(statuses.every((s) => s.status), 'every monitor still answers');
});

test('failure detection: an OSD that stops heartbeating is marked down, then out; with noout it stays in', async () => {
  for (const id of [10, 11]) await client.command({ osdBoot: { id, address: `127.0.0.1:${17600 + id}`, host: `fd-${id}` } });
  const beat = setInterval(() => void client.heartbeat(10, 0).catch(() => {}), 200);
  try {
    const down = await waitFor('osd.11 down', 10_000, async () => {
      const map = await client.getMap();
      const osd11 = map.osds.find((o) => o.id === 11);
      return osd11 && !osd11.up ? map : undefined;
    });
    assert.equal(down.osds.find((o) => o.id === 10)?.up, true, 'the heartbeating OSD stays up');
    await waitFor('osd.11 out', 10_000, async () => ((await client.getMap()).osds.find((o) => o.id === 11)?.in === false ? true : undefined));
    await client.command({ flagSet: { flag: 'noout', on: true } });
    await client.command({ osdBoot: { id: 12, address: '127.0.0.1:17612', host: 'fd-12' } });
    await waitFor('osd.12 down', 10_000, async () => ((await client.getMap()).osds.find((o) => o.id === 12)?.up === false ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.equal((await client.getMap()).osds.find((o) => o.id === 12)?.in, true, 'noout keeps a down OSD in');
    await client.command({ flagSet: { flag: 'noout', on: false } });
  } finally {
    clearInterval(beat);
  }
});

test('read your writes: a follower asked for the map right after a command answers with that command applied', async () => {
  const leader = await leaderName();
  const followers = config.monitors.filter((m) => m.name !== leader);
  const readers = followers.map((m) => new MonitorClient([m], { callTimeoutMs: 1000, commandTimeoutMs: 3000 }));
  try {
    for (let i = 0; i < 10; i++) {
      const reply = await client.command({ poolCreate: { name: `ryw-${i}`, pgNum: 8 } });
      for (const reader of readers) {
        const map = await reader.getMap();
        assert.ok(map.epoch >= Number(reply.epoch), `a follower answered epoch ${map.epoch} after a command acknowledged at ${reply.epoch}`);
        assert.ok(map.pools.some((p) => p.name === `ryw-${i}`));
      }
    }
  } finally {
    for (const reader of readers) reader.close();
  }
});

test('kill -9 the leader under a command stream: a new leader within 5 s, nothing acknowledged is lost, the old leader catches up', async () => {
  const acknowledged: string[] = [];
  let stop = false;
  let failures = 0;
  const writer = (async () => {
    for (let i = 0; !stop; i++) {
      const name = `stream-${i}`;
      try {
        await client.command({ poolCreate: { name, pgNum: 8 } });
        acknowledged.push(name);
      } catch (error) {
        failures++;
        if (error instanceof StorageError && error.code === 'ALREADY_EXISTS') acknowledged.push(name);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  })();
  await waitFor('some commands', 10_000, () => (acknowledged.length >= 10 ? true : undefined));
  const oldLeader = await leaderName();
  await monitors.get(oldLeader)?.kill();
  const killedAt = Date.now();
  const countAtKill = acknowledged.length;
  await waitFor('a command acknowledged by a new leader', 5_000, () => (acknowledged.length > countAtKill + 2 ? true : undefined), 20);
  const failoverMs = Date.now() - killedAt;
  const newLeader = await leaderName();
  assert.notEqual(newLeader, oldLeader);
  stop = true;
  await writer;
  process.stderr.write(`# failover: new leader mon.${newLeader} served commands ${failoverMs} ms after kill -9 of mon.${oldLeader} (${failures} retried)\n`);

  const pools = new Set(await poolNames());
  for (const name of acknowledged) assert.ok(pools.has(name), `acknowledged ${name} is in the map`);

  monitors.get(oldLeader)?.start();
  const target = (await client.getMap()).epoch;
  await waitFor(`mon.${oldLeader} to catch up to epoch ${target}`, 10_000, async () => {
    const s = (await client.statusAll()).find((m) => m.name === oldLeader)?.status;
    return s && Number(s.epoch) >= target ? true : undefined;
  });
});

test('losing 2 of 3 monitors: commands fail fast with NO_QUORUM, reads still answered; one back and service resumes', async () => {
  const leader = await leaderName();
  const others = names.filter((n) => n !== leader);
  const survivor = others[0] as string;
  for (const n of names.filter((n) => n !== survivor)) await monitors.get(n)?.kill();
  const lone = new MonitorClient(config.monitors.filter((m) => m.name === survivor), { callTimeoutMs: 1000, commandTimeoutMs: 3000 });
  try {
    const started = Date.now();
    await assert.rejects(lone.command({ poolCreate: { name: 'no-quorum' } }), (e: unknown) => e instanceof StorageError && e.code === 'NO_QUORUM');
    const elapsed = Date.now() - started;
    assert.ok(elapsed < config.timeouts.commandTimeoutMs + 2000, `NO_QUORUM came after ${elapsed} ms, not a hang`);
    const map = await lone.getMap();
    assert.ok(map.epoch > 1 && !map.pools.some((p) => p.name === 'no-quorum'), 'the map is still readable and unchanged');
    const cli = runCli(['--conf', confPath, 'pool', 'create', 'no-quorum-cli']);
    assert.notEqual(cli.status, 0);
    assert.match(cli.stderr, /NO_QUORUM/);

    const back = names.find((n) => n !== survivor) as string;
    monitors.get(back)?.start();
    await waitFor('service to resume', 15_000, async () => {
      try {
        await lone.command({ poolCreate: { name: 'after-quorum' } });
        return true;
      } catch (error) {
        if (error instanceof StorageError && error.code === 'ALREADY_EXISTS') return true;
        return undefined;
      }
    }, 200);
  } finally {
    lone.close();
  }
  for (const n of names) if (!monitors.get(n)?.running) monitors.get(n)?.start();
  await leaderName();
});

test('10,000 commands keep the log bounded by snapshots; all monitors restarted keep the map intact', async () => {
  const total = 10_000;
  const inFlight = 64;
  let next = 0;
  await client.command({ poolCreate: { name: 'churn', pgNum: 8 } });
  const worker = async () => {
    while (next < total) {
      const i = next++;
      await client.command({ poolSet: { name: 'churn', key: 'application', value: `v${i}` } });
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  // Any monitor serves map reads, and a follower may not have applied the last commands yet: wait until every
  // monitor has applied the same index, then read.
  await waitFor('every monitor to apply the last command', 20_000, async () => {
    const applied = (await client.statusAll()).map((s) => String(s.status?.appliedIndex ?? 'down'));
    return applied.every((a) => a === applied[0] && a !== 'down') ? true : undefined;
  });
  const before = await client.getMap();
  const statuses = await client.statusAll();
  for (const s of statuses) {
    assert.ok(s.status, `mon.${s.name} answers`);
    const logEntries = Number(s.status.logEntries);
    assert.ok(logEntries <= 2 * config.monitor.snapshotEveryEntries + inFlight, `mon.${s.name} keeps ${logEntries} log entries`);
    assert.ok(Number(s.status.snapshotIndex) > total / 2, `mon.${s.name} took snapshots`);
  }

  for (const m of monitors.values()) await m.kill();
  for (const m of monitors.values()) m.start();
  const after = await waitFor('the map after a full restart', 20_000, async () => {
    const map = await client.getMap();
    return map.epoch >= before.epoch ? map : undefined;
  });
  assert.deepEqual(after.pools, before.pools);
  assert.deepEqual(after.osds, before.osds);
  assert.deepEqual(after.crush, before.crush);
  await leaderName();
  await client.command({ poolSet: { name: 'churn', key: 'application', value: 'after-restart' } });
});
