/**
 * `shoal fs check NAME [--repair]`: verifies a filesystem against its invariants and (with repair) restores them.
 * Invariants: every entry names an existing inode of its type; every inode other than the root is reachable from
 * the root (or recorded as a stray: unlinked while open); a file's link count is the number of entries naming it, a
 * directory's is 2 + its subdirectories; no removed directory is still named; no rename intent is left; every data
 * object belongs to an existing inode and is recorded in its object list. Inodes younger than the intent grace may
 * be a create in progress on a live mount and are not counted as orphans.
 */
import { forEachLimited, wire, type ObjectClient } from '../../src/index.js';
import { objectKey, parseObjectKey } from './data.js';
import { decodeDentry, decodeInode, decodeIntent, typeOf, type Dentry, type Inode } from './encoding.js';
import { parseDataObject, parseInodeObject, rootIno, superObject } from './layout.js';
import { isNotFound } from './metadata.js';
import { FileSystem, intentGraceMs } from './namespace.js';
import { metaPoolName } from './superblock.js';

const Kind = wire.ObjectOp.Kind;

export interface CheckReport {
  inodes: number;
  directories: number;
  files: number;
  dataObjects: number;
  /** What is wrong (before repair), one line each. */
  problems: string[];
  /** Changes made (with repair). */
  repaired: number;
  /** Inodes skipped as too young to judge (a create in progress elsewhere). */
  young: number;
}

async function listAll(client: ObjectClient, pool: string): Promise<string[]> {
  const names: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.list(pool, { ...(cursor ? { cursor } : {}), limit: 5000 });
    names.push(...page.names);
    cursor = page.cursor;
  } while (cursor);
  return names;
}

async function omapAll(client: ObjectClient, pool: string, object: string, prefix = ''): Promise<[string, Buffer][]> {
  const out: [string, Buffer][] = [];
  let after = '';
  for (;;) {
    const page = await client.omapList(pool, object, { after, prefix, limit: 4096 });
    out.push(...page.entries);
    if (!page.more || page.entries.length === 0) return out;
    after = page.entries.at(-1)?.[0] ?? '';
  }
}

export async function checkFileSystem(client: ObjectClient, name: string, options: { repair: boolean; graceMs?: number }): Promise<CheckReport> {
  // Live (announced), so a mount that writes back writes what it holds first and stays in step while this runs.
  const fs = await FileSystem.open(client, name, { cacheTtlMs: 0, recover: false, live: true, writeBack: false });
  try {
    return await check(client, fs, name, options);
  } finally {
    await fs.close();
  }
}

async function check(client: ObjectClient, fs: FileSystem, name: string, options: { repair: boolean; graceMs?: number }): Promise<CheckReport> {
  const graceMs = options.graceMs ?? intentGraceMs;
  const meta = metaPoolName(name);
  const report: CheckReport = { inodes: 0, directories: 0, files: 0, dataObjects: 0, problems: [], repaired: 0, young: 0 };
  const problem = (text: string) => report.problems.push(text);

  // Renames a dead mount left half done (FileSystem.open already finished them: any left belong to live mounts).
  const live = await fs.liveClients();
  const intents = await omapAll(client, meta, superObject, 'intent.');
  for (const [key, value] of intents) {
    const owner = decodeIntent(value).owner;
    if (live.has(owner)) report.young++;
    else problem(`rename intent ${key} of ${owner || 'an unknown client'} is pending`);
  }
  if (options.repair && intents.length) report.repaired += await fs.recoverIntents();

  const inodes = new Map<number, Inode>();
  const entries = new Map<number, [string, Dentry][]>();
  const loadInodes = async () => {
    inodes.clear();
    entries.clear();
    const names = (await listAll(client, meta)).map(parseInodeObject).filter((n): n is number => n !== undefined);
    await forEachLimited(names, 32, async (ino) => {
      try {
        const inode = decodeInode(await client.getXattr(meta, `i.${ino.toString(16)}`, 'a'));
        inodes.set(ino, inode);
        if (typeOf(inode.mode) === 'dir') entries.set(ino, (await omapAll(client, meta, `i.${ino.toString(16)}`)).map(([k, v]) => [k, decodeDentry(v)]));
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
    });
  };
  await loadInodes();
  report.inodes = inodes.size;
  report.directories = [...inodes.values()].filter((i) => typeOf(i.mode) === 'dir').length;
  report.files = report.inodes - report.directories;
  if (!inodes.has(rootIno)) {
    problem('the root directory is missing');
    return report;
  }

  // Reachability and link counts from the root.
  const refs = new Map<number, number>();
  const subdirs = new Map<number, number>();
  const reachable = new Set<number>([rootIno]);
  const queue = [rootIno];
  while (queue.length > 0) {
    const dir = queue.shift() as number;
    for (const [entryName, entry] of entries.get(dir) ?? []) {
      const target = inodes.get(entry.ino);
      if (!target) {
        problem(`entry ${entryName} of directory ${dir} names missing inode ${entry.ino}`);
        if (options.repair) (await client.omapRemove(meta, `i.${dir.toString(16)}`, [entryName]), report.repaired++);
        continue;
      }
      if (typeOf(target.mode) !== entry.type) problem(`entry ${entryName} of directory ${dir} says ${entry.type}, inode ${entry.ino} is ${typeOf(target.mode)}`);
      if (target.dead) {
        problem(`entry ${entryName} of directory ${dir} names removed directory ${entry.ino}`);
        if (options.repair) {
          await client.omapRemove(meta, `i.${dir.toString(16)}`, [entryName]);
          await client.remove(meta, `i.${entry.ino.toString(16)}`).catch(() => {});
          report.repaired++;
        }
        continue;
      }
      refs.set(entry.ino, (refs.get(entry.ino) ?? 0) + 1);
      if (entry.type === 'dir') {
        subdirs.set(dir, (subdirs.get(dir) ?? 0) + 1);
        if (reachable.has(entry.ino)) problem(`directory ${entry.ino} has more than one entry`);
        else queue.push(entry.ino);
      }
      reachable.add(entry.ino);
    }
  }
  const strayRecords = await omapAll(client, meta, superObject, 'stray.');
  const strays = new Set(strayRecords.map(([k]) => Number(k.slice('stray.'.length))));
  const liveStrays = new Set(strayRecords.filter(([, v]) => live.has(v.toString())).map(([k]) => Number(k.slice('stray.'.length))));
  const now = Date.now();
  for (const [ino, inode] of inodes) {
    if (!reachable.has(ino)) {
      if (now - inode.ctimeMs < graceMs || liveStrays.has(ino)) {
        report.young++;
        continue;
      }
      problem(`${strays.has(ino) ? 'stray' : 'orphan'} inode ${ino} (${typeOf(inode.mode)}, ${inode.size} bytes) is not reachable from the root`);
      if (options.repair) (await fs.purge(ino), report.repaired++);
      continue;
    }
    const want = typeOf(inode.mode) === 'dir' ? 2 + (subdirs.get(ino) ?? 0) : (refs.get(ino) ?? 0);
    if (inode.nlink !== want) {
      problem(`inode ${ino} has link count ${inode.nlink}, ${want} entries name it`);
      if (options.repair) (await fs.metadata.update(ino, (i) => ({ inode: { ...i, nlink: want } })), report.repaired++);
    }
  }
  for (const ino of strays) {
    if (!inodes.has(ino)) {
      problem(`stray record for missing inode ${ino}`);
      if (options.repair) (await client.omapRemove(meta, superObject, [`stray.${ino}`]), report.repaired++);
    }
  }

  // Data objects: each belongs to an inode and is in its object list (a crash after the write, before the flush).
  const objectSize = fs.superblock.objectSize;
  const dataNames = await listAll(client, fs.superblock.dataPool);
  const recorded = new Map<number, Set<number>>();
  for (const dataName of dataNames) {
    const parsed = parseDataObject(dataName);
    if (!parsed) continue;
    report.dataObjects++;
    const inode = inodes.get(parsed.ino);
    if (!inode) {
      if (options.repair) (await client.remove(fs.superblock.dataPool, dataName).catch(() => {}), report.repaired++);
      problem(`data object ${dataName} belongs to no inode`);
      continue;
    }
    let known = recorded.get(parsed.ino);
    if (!known) {
      known = new Set((await omapAll(client, meta, `i.${parsed.ino.toString(16)}`, 'o.')).map(([k]) => parseObjectKey(k)).filter((i): i is number => i !== undefined));
      recorded.set(parsed.ino, known);
    }
    if (known.has(parsed.index)) continue;
    if (now - inode.mtimeMs < graceMs) continue;
    const beyond = parsed.index * objectSize >= inode.size;
    problem(`data object ${dataName} is not in the object list of inode ${parsed.ino}${beyond ? ' and lies past its end' : ''}`);
    if (!options.repair) continue;
    if (beyond) await client.remove(fs.superblock.dataPool, dataName).catch(() => {});
    else await client.execute(meta, `i.${parsed.ino.toString(16)}`, [{ kind: Kind.KIND_OMAP_SET, entries: [{ key: objectKey(parsed.index), value: Buffer.alloc(0) }] }]);
    report.repaired++;
  }
  return report;
}
