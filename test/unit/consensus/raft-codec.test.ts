import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { isStorageError, type Random } from '../../../src/common/index.js';
import {
  decodeEntry,
  decodeHardState,
  decodeRaftMessage,
  decodeSnapshot,
  encodeEntry,
  encodeHardState,
  encodeRaftMessage,
  encodeSnapshot,
  entryTypes,
  messageTypes,
  wire,
  type Entry,
  type HardState,
  type Message,
  type Snapshot,
} from '../../../src/protocol/index.js';
import { repoRoot } from '../../helpers/processes.js';
import { seededRandom } from '../../helpers/seed.js';

const vectors = join(repoRoot, 'test', 'vectors', 'protocol');
const bytes = (...b: number[]) => new Uint8Array(b);

function vector(name: string): Buffer {
  return Buffer.from(readFileSync(join(vectors, name), 'utf8').trim(), 'hex');
}

/** Golden encodings: each must keep decoding to exactly this, in every future version. */
const golden: Array<{ file: string; decode: (b: Uint8Array) => unknown; encode: (v: never) => Uint8Array; value: unknown }> = [
  {
    file: 'raft-hard-state-v1.hex',
    decode: decodeHardState,
    encode: encodeHardState,
    value: { term: 7, vote: 'mon-b', commit: 1234 } satisfies HardState,
  },
  {
    file: 'raft-entry-v1.hex',
    decode: decodeEntry,
    encode: encodeEntry,
    value: { index: 42, term: 7, type: 'normal', data: new TextEncoder().encode('set pool.size 3') } satisfies Entry,
  },
  {
    file: 'raft-entry-noop-v1.hex',
    decode: decodeEntry,
    encode: encodeEntry,
    value: { index: 43, term: 8, type: 'noop', data: bytes() } satisfies Entry,
  },
  {
    file: 'raft-snapshot-v1.hex',
    decode: decodeSnapshot,
    encode: encodeSnapshot,
    value: { index: 1000, term: 9, voters: ['mon-a', 'mon-b', 'mon-c'], data: bytes(1, 2, 3, 255) } satisfies Snapshot,
  },
  {
    file: 'raft-message-append.hex',
    decode: decodeRaftMessage,
    encode: encodeRaftMessage,
    value: {
      type: 'append',
      from: 'mon-a',
      to: 'mon-c',
      term: 9,
      logTerm: 8,
      index: 43,
      entries: [
        { index: 44, term: 9, type: 'noop', data: bytes() },
        { index: 45, term: 9, type: 'normal', data: bytes(0xde, 0xad) },
      ],
      commit: 43,
      reject: false,
      rejectHint: 0,
      snapshot: null,
    } satisfies Message,
  },
  {
    file: 'raft-message-snapshot.hex',
    decode: decodeRaftMessage,
    encode: encodeRaftMessage,
    value: {
      type: 'snapshot',
      from: 'mon-a',
      to: 'mon-b',
      term: 9,
      logTerm: 9,
      index: 1000,
      entries: [],
      commit: 1001,
      reject: false,
      rejectHint: 0,
      snapshot: { index: 1000, term: 9, voters: ['mon-a', 'mon-b', 'mon-c'], data: bytes(1, 2, 3, 255) },
    } satisfies Message,
  },
  {
    file: 'raft-message-append-response-reject.hex',
    decode: decodeRaftMessage,
    encode: encodeRaftMessage,
    value: {
      type: 'append-response',
      from: 'mon-c',
      to: 'mon-a',
      term: 9,
      logTerm: 6,
      index: 43,
      entries: [],
      commit: 0,
      reject: true,
      rejectHint: 40,
      snapshot: null,
    } satisfies Message,
  },
];

/** Compares with Uint8Array contents, whatever class (Buffer or Uint8Array) the decoder handed back. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return Array.from(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}

test('raft codec: golden encodings in test/vectors/protocol keep decoding, and encoding still gives the same bytes', () => {
  for (const g of golden) {
    const encoded = vector(g.file);
    assert.deepEqual(plain(g.decode(encoded)), plain(g.value), g.file);
    assert.equal(Buffer.from(g.encode(g.value as never)).toString('hex'), encoded.toString('hex'), g.file);
  }
});

function randomEntry(random: Random, index: number): Entry {
  return { index, term: random.int(0, 2 ** 40), type: random.pick(entryTypes), data: random.bytes(random.int(0, 40)) };
}

function randomSnapshot(random: Random): Snapshot {
  return {
    index: random.int(0, Number.MAX_SAFE_INTEGER),
    term: random.int(0, 1000),
    voters: Array.from({ length: random.int(0, 5) }, (_, i) => `mon-${i}-${random.int(0, 9)}`),
    data: random.bytes(random.int(0, 100)),
  };
}

function randomMessage(random: Random): Message {
  const index = random.int(0, 2 ** 32);
  return {
    type: random.pick(messageTypes),
    from: random.pick(['a', 'mon-b', 'ünïcode', '']),
    to: random.pick(['a', 'mon-c', '']),
    term: random.int(0, Number.MAX_SAFE_INTEGER),
    logTerm: random.int(0, 100),
    index,
    entries: Array.from({ length: random.int(0, 4) }, (_, i) => randomEntry(random, index + 1 + i)),
    commit: random.int(0, 2 ** 45),
    reject: random.chance(0.5),
    rejectHint: random.int(0, 2 ** 20),
    snapshot: random.chance(0.3) ? randomSnapshot(random) : null,
  };
}

test('raft codec: every value round-trips (seeded)', (t) => {
  const random = seededRandom(t);
  for (let i = 0; i < 500; i++) {
    const m = randomMessage(random);
    assert.deepEqual(plain(decodeRaftMessage(encodeRaftMessage(m))), plain(m));
    const e = randomEntry(random, random.int(0, Number.MAX_SAFE_INTEGER));
    assert.deepEqual(plain(decodeEntry(encodeEntry(e))), plain(e));
    const s = randomSnapshot(random);
    assert.deepEqual(plain(decodeSnapshot(encodeSnapshot(s))), plain(s));
    const h = { term: random.int(0, Number.MAX_SAFE_INTEGER), vote: random.pick(['', 'a', 'mon-b']), commit: random.int(0, 2 ** 50) };
    assert.deepEqual(decodeHardState(encodeHardState(h)), h);
  }
});

const isCorrupt = (e: unknown) => isStorageError(e, 'CORRUPT_DATA');

test('raft codec: a wrong format marker, a truncated marker or an unknown version is refused', () => {
  const entry = encodeEntry({ index: 1, term: 1, type: 'normal', data: bytes(1) });
  assert.throws(() => decodeHardState(entry), isCorrupt, 'an entry is not a hard state');
  assert.throws(() => decodeSnapshot(entry), isCorrupt);
  assert.throws(() => decodeEntry(bytes(0x11)), isCorrupt);
  assert.throws(() => decodeEntry(bytes()), isCorrupt);
  const future = Buffer.from(entry);
  future[1] = 2;
  assert.throws(() => decodeEntry(future), (e) => isStorageError(e, 'UNSUPPORTED_VERSION'));
});

test('raft codec: unknown enum values and counts beyond 2^53 are CORRUPT_DATA', () => {
  const unknownType = wire.RaftMessage.encode({ type: 99 as wire.RaftMessageType, from: 'a' }).finish();
  assert.throws(() => decodeRaftMessage(unknownType), isCorrupt);
  const missingType = wire.RaftMessage.encode({ from: 'a', to: 'b', term: 1 }).finish();
  assert.throws(() => decodeRaftMessage(missingType), isCorrupt);
  const badEntry = wire.RaftMessage.encode({ type: wire.RaftMessageType.RAFT_MESSAGE_APPEND, entries: [{ type: 7 as wire.RaftEntryType }] }).finish();
  assert.throws(() => decodeRaftMessage(badEntry), isCorrupt);
  // Field 4 (term) as a varint of 2^60: past what a JavaScript number holds exactly.
  const huge = Buffer.from([0x08, 0x07, 0x20, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]);
  assert.throws(() => decodeRaftMessage(huge), isCorrupt);
});

test('raft codec: garbage and every truncation of valid encodings give CORRUPT_DATA or a well-typed value, never a crash', (t) => {
  const random = seededRandom(t);
  const check = (decode: () => unknown) => {
    try {
      decode();
    } catch (error) {
      assert.ok(isCorrupt(error), `unexpected ${String(error)}`);
    }
  };
  for (const g of golden) {
    const encoded = vector(g.file);
    for (let n = 0; n < encoded.length; n++) check(() => g.decode(encoded.subarray(0, n)));
  }
  for (let i = 0; i < 3000; i++) {
    const garbage = random.bytes(random.int(0, 64));
    check(() => {
      const m = decodeRaftMessage(garbage);
      assert.ok(messageTypes.includes(m.type));
      assert.ok(Array.isArray(m.entries) && Number.isSafeInteger(m.term) && typeof m.from === 'string');
      return m;
    });
    for (const [format, decode] of [
      [0x10, decodeHardState],
      [0x11, decodeEntry],
      [0x12, decodeSnapshot],
    ] as const) {
      const marked = Buffer.concat([bytes(format, 1), garbage]);
      check(() => decode(marked));
    }
  }
});
