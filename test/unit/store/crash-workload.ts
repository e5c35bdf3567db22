/**
 * The transaction stream of the crash test: transaction `index` depends only on (seed, index), so the killed child
 * and the checking parent build the same ones. No transaction can fail whatever state it meets (clones come from
 * `base`, which is never removed; renames move an object written earlier in the same transaction).
 */
import { Random } from '../../../src/common/index.js';
import { Transaction, type ObjectId } from '../../../osd/store/index.js';

export const crashPgs = ['1.0', '1.1', '1.2'];
const base: ObjectId = { pg: '1.0', name: 'base' };
const names: ObjectId[] = [
  { pg: '1.0', name: 'a' },
  { pg: '1.0', name: 'b' },
  { pg: '1.0', name: 'c' },
  { pg: '1.1', name: 'd' },
  { pg: '1.1', name: 'e' },
  { pg: '1.2', name: 'f' },
];

export function crashTransaction(seed: number, index: number): Transaction {
  const random = new Random((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
  const tx = new Transaction();
  if (index === 0) return tx.writeFull(base, random.bytes(200_000)).setXattr(base, 'v', Buffer.from('0'));
  // 65,536 and 131,072 at aligned offsets: deferred pieces copied into their file with O_DIRECT.
  const length = () => random.pick([1, 17, 4096, 4096, 8192, 5000, 70_000, 65_536, 131_072]);
  const opCount = random.int(1, 4);
  for (let i = 0; i < opCount; i++) {
    const oid = random.pick(names);
    const kind = random.int(0, 13);
    if (kind <= 3) {
      // Block-aligned overwrites of large objects take the deferred-write path; the rest straddle blocks.
      const offset = random.chance(0.5) ? random.int(0, 80) * 4096 : random.int(0, 330_000);
      tx.write(oid, offset, random.bytes(length()));
    } else if (kind === 4) {
      tx.writeFull(oid, random.bytes(random.pick([0, 1000, 60_000, 70_000, 300_000])));
    } else if (kind === 5) {
      tx.truncate(oid, random.int(0, 350_000));
    } else if (kind === 6) {
      tx.zero(oid, random.int(0, 300_000), random.int(1, 100_000));
    } else if (kind === 7) {
      tx.remove(oid);
    } else if (kind === 8) {
      tx.setXattr(oid, `x${random.int(0, 2)}`, random.bytes(random.int(0, 40)));
    } else if (kind === 9) {
      tx.omapSet(oid, { [`k${random.int(0, 20)}`]: random.bytes(random.int(0, 60)), [`k${random.int(0, 20)}`]: random.bytes(8) });
    } else if (kind === 10) {
      tx.omapRemove(oid, [`k${random.int(0, 20)}`]).rmXattr(oid, `x${random.int(0, 2)}`);
    } else if (kind === 11) {
      tx.clone(base, oid);
    } else if (kind === 12) {
      const temp = { pg: '1.1', name: `tmp.${index}` };
      tx.write(temp, 0, random.bytes(random.pick([100, 90_000]))).omapSet(temp, { t: Buffer.from('1') }).rename(temp, oid);
    } else if (random.chance(0.3)) {
      tx.removeCollection('1.2');
    } else {
      tx.write(base, random.int(0, 49) * 4096, random.bytes(4096)).setXattr(base, 'v', Buffer.from(String(index)));
    }
  }
  // Every transaction appends a PG log entry and trims an old one, as the OSD will.
  tx.pgMetaSet('1.0', { [`log.${String(index).padStart(8, '0')}`]: random.bytes(32) });
  if (index > 40) tx.pgMetaRemove('1.0', [`log.${String(index - 40).padStart(8, '0')}`]);
  return tx;
}
