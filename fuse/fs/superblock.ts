/**
 * Creating and finding a filesystem: its pools, the superblock object (`super`: format, data pool, object size, the
 * inode counter) and the root directory.
 */
import { StorageError, wire, type ObjectClient } from '../../src/index.js';
import { S_IFDIR, decodeSuperblock, encodeSuperblock, type Inode, type Superblock } from './encoding.js';
import { defaultObjectSize, rootIno, superObject } from './layout.js';
import { Metadata, isNotFound } from './metadata.js';

const Kind = wire.ObjectOp.Kind;

export const sbXattr = 'sb';
export const nextInoXattr = 'next';

export function metaPoolName(fs: string): string {
  return `fs.${fs}.meta`;
}

export function dataPoolName(fs: string): string {
  return `fs.${fs}.data`;
}

async function ensurePool(client: ObjectClient, name: string, pgNum: number): Promise<void> {
  if (client.map().pools.some((p) => p.name === name)) return;
  await client.monitors.command({ poolCreate: { name, pgNum, application: 'fs' } }).catch((error: unknown) => {
    if (!(error instanceof StorageError && error.code === 'ALREADY_EXISTS')) throw error;
  });
  const deadline = Date.now() + 30_000;
  while (!client.map().pools.some((p) => p.name === name)) {
    if (Date.now() > deadline) throw new StorageError('TIMEOUT', `pool ${name} did not appear in the map`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Creates filesystem `name`: its pools (a data pool may be given), superblock and root directory. */
export async function createFileSystem(client: ObjectClient, name: string, options: { dataPool?: string; objectSize?: number; uid?: number; gid?: number } = {}): Promise<Superblock> {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) throw new StorageError('INVALID_ARGUMENT', `filesystem names are 1-64 letters, digits, _ or -: ${JSON.stringify(name)}`);
  const meta = metaPoolName(name);
  const dataPool = options.dataPool ?? dataPoolName(name);
  await ensurePool(client, meta, 32);
  if (options.dataPool) client.pool(options.dataPool);
  else await ensurePool(client, dataPool, 64);
  const sb: Superblock = { name, dataPool, objectSize: options.objectSize ?? defaultObjectSize, createdMs: Date.now() };
  try {
    await client.execute(meta, superObject, [
      { kind: Kind.KIND_CREATE },
      { kind: Kind.KIND_SETXATTR, name: sbXattr, value: encodeSuperblock(sb) },
      { kind: Kind.KIND_SETXATTR, name: nextInoXattr, value: Buffer.from(String(rootIno + 1)) },
    ]);
  } catch (error) {
    if (error instanceof StorageError && error.code === 'ALREADY_EXISTS') throw new StorageError('ALREADY_EXISTS', `filesystem ${name} already exists`);
    throw error;
  }
  const now = Date.now();
  const root: Inode = { ino: rootIno, mode: S_IFDIR | 0o755, uid: options.uid ?? 0, gid: options.gid ?? 0, size: 0, nlink: 2, atimeMs: now, mtimeMs: now, ctimeMs: now, parent: rootIno, target: '', gen: 0, dead: false };
  const metadata = new Metadata(client, { pool: meta, cacheTtlMs: 0 });
  await metadata.create(root).catch((error: unknown) => {
    if (!(error instanceof StorageError && error.code === 'ALREADY_EXISTS')) throw error;
  });
  return sb;
}

export async function readSuperblock(client: ObjectClient, name: string): Promise<Superblock> {
  const meta = metaPoolName(name);
  if (!client.map().pools.some((p) => p.name === meta)) throw new StorageError('NOT_FOUND', `filesystem ${name} does not exist (no pool ${meta}); create it with shoal fs create ${name}`);
  try {
    return decodeSuperblock(await client.getXattr(meta, superObject, sbXattr));
  } catch (error) {
    if (isNotFound(error)) throw new StorageError('NOT_FOUND', `filesystem ${name} has no superblock`);
    throw error;
  }
}

