/**
 * Golden vectors of every persisted encoding outside the Raft and store codecs (which have their own): the cluster
 * map (monitor snapshots, map files), monitor commands (Raft log entries), PG log entries and PG info (OSD stores).
 * Each file must keep decoding to exactly its value in every future version, and today's encoder must produce its
 * bytes (a deliberate format change adds a new file; it never rewrites an old one).
 * `SHOAL_WRITE_VECTORS=1` writes the files that do not exist yet; it never overwrites one.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  StorageError,
  clusterMapFromJson,
  decodeClusterMap,
  decodeMonitorCommand,
  decodePgInfo,
  decodePgLogEntry,
  encodeClusterMap,
  encodeMonitorCommand,
  encodePgInfo,
  encodeEcRollback,
  decodeEcRollback,
  encodePgLogEntry,
  wire,
} from '../../../src/index.js';
import { repoRoot } from '../../helpers/processes.js';

const vectors = join(repoRoot, 'test', 'vectors', 'protocol');

/** A map with every kind of content: 30 OSDs under hosts, rules, and (added here) monitors, pools and flags. */
function sampleMap() {
  const map = clusterMapFromJson(readFileSync(join(repoRoot, 'test', 'vectors', 'crush', 'map-3x10.json'), 'utf8'));
  map.epoch = 17;
  map.monitors = [{ name: 'a', address: '10.0.0.1:7400' }, { name: 'b', address: '10.0.0.2:7400' }];
  map.pools = [
    { id: 1, name: 'data', type: 'replicated', size: 3, minSize: 2, ecK: 0, ecM: 0, pgNum: 32, rule: 0, stripeUnit: 0, application: 'rados' },
    { id: 2, name: 'ec', type: 'erasure', size: 6, minSize: 5, ecK: 4, ecM: 2, pgNum: 64, rule: 2, stripeUnit: 4096, application: 's3' },
  ];
  map.flags = ['noout'];
  map.createdMs = 1_700_000_000_000;
  map.modifiedMs = 1_700_000_123_456;
  map.nextPoolId = 3;
  const osd = map.osds[4];
  if (osd) Object.assign(osd, { up: false, in: false, downAtMs: 1_700_000_100_000, autoOut: true, address: '10.0.1.4:6800' });
  return map;
}

interface Golden {
  file: string;
  encode: () => Uint8Array;
  /** Decodes the file's bytes to something comparable with `expected`. */
  decode: (bytes: Uint8Array) => unknown;
  expected: unknown;
}

const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value, (_k, v: unknown) => (v instanceof Uint8Array ? Array.from(v) : v)));
const command: wire.MonitorCommand.$Properties = { timestampMs: 1_700_000_000_123, poolCreate: { name: 'ec', type: wire.PoolType.POOL_TYPE_ERASURE, ecK: 4, ecM: 2, pgNum: 64, rule: 'erasure_rule' } };
const logEntry: wire.PgLogEntry.$Properties = {
  version: { epoch: 12, seq: 345 },
  priorVersion: { epoch: 11, seq: 9 },
  object: 'rbd_data.1234.0000000000000007',
  op: wire.PgLogEntry.Op.OP_MODIFY,
  reqid: { client: 'client.4711', tid: 99 },
  mtimeMs: 1_700_000_000_456,
};
const info: wire.PgStoredInfo.$Properties = { lastUpdate: { epoch: 12, seq: 345 }, logTail: { epoch: 10, seq: 1 }, lastEpochStarted: 12 };

const ecRollback: wire.EcRollback.$Properties = {
  version: { epoch: 14, seq: 7 },
  priorVersion: { epoch: 12, seq: 3 },
  prevExists: true,
  prevSize: 1_048_579,
  prevShardSize: 266_240,
  offset: 262_144,
};

const golden: Golden[] = [
  { file: 'cluster-map-v1.hex', encode: () => encodeClusterMap(sampleMap()), decode: (b) => plain(decodeClusterMap(b)), expected: plain(sampleMap()) },
  {
    file: 'monitor-command-v1.hex',
    encode: () => encodeMonitorCommand(command),
    decode: (b) => plain(wire.MonitorCommand.toObject(decodeMonitorCommand(b), { longs: Number, defaults: false })),
    expected: plain(command),
  },
  {
    file: 'pg-log-entry-v1.hex',
    encode: () => encodePgLogEntry(logEntry),
    decode: (b) => plain(wire.PgLogEntry.toObject(decodePgLogEntry(b), { longs: Number, defaults: false })),
    expected: plain({ ...logEntry, op: undefined }),
  },
  {
    file: 'pg-info-v1.hex',
    encode: () => encodePgInfo(info),
    decode: (b) => plain(wire.PgStoredInfo.toObject(decodePgInfo(b), { longs: Number, defaults: false })),
    expected: plain(info),
  },
  {
    file: 'ec-rollback-v1.hex',
    encode: () => encodeEcRollback(ecRollback, Buffer.from('old shard bytes')),
    decode: (b) => {
      const { record, oldBytes } = decodeEcRollback(b);
      return plain({ record: wire.EcRollback.toObject(record, { longs: Number, defaults: false }), oldBytes: oldBytes.toString() });
    },
    expected: plain({ record: ecRollback, oldBytes: 'old shard bytes' }),
  },
];

for (const g of golden) {
  test(`persisted format ${g.file}: the golden bytes decode to the value, and encoding the value gives the bytes`, () => {
    const path = join(vectors, g.file);
    if (!existsSync(path) && process.env['SHOAL_WRITE_VECTORS'] === '1') writeFileSync(path, Buffer.from(g.encode()).toString('hex') + '\n');
    assert.ok(existsSync(path), `${path} is missing (SHOAL_WRITE_VECTORS=1 writes it once)`);
    const bytes = Buffer.from(readFileSync(path, 'utf8').trim(), 'hex');
    assert.deepEqual(g.decode(bytes), g.expected);
    assert.equal(Buffer.from(g.encode()).toString('hex'), bytes.toString('hex'));
  });
}

test('persisted formats: a wrong marker or truncated bytes are CORRUPT_DATA, a future version UNSUPPORTED_VERSION', () => {
  const map = Buffer.from(encodeClusterMap(sampleMap()));
  const entry = Buffer.from(encodePgLogEntry(logEntry));
  const refused = (f: () => unknown, code = 'CORRUPT_DATA') => assert.throws(f, (e: unknown) => e instanceof StorageError && e.code === code, String(f));
  refused(() => decodeClusterMap(entry)); // another record's marker
  refused(() => decodePgLogEntry(map));
  const future = Buffer.from(entry);
  future[1] = 0x7f; // version byte
  refused(() => decodePgLogEntry(future), 'UNSUPPORTED_VERSION');
  refused(() => decodeClusterMap(map.subarray(0, map.length - 7)));
  refused(() => decodePgInfo(Buffer.alloc(0)));
});
