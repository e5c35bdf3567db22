/** `shoal image …` (block images: create, ls, info, resize, rm, snapshots, clones, export/import) and `shoal nbd`. */
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { BlockImages, StorageError, describeLock, eachLimited, isLogLevel, parseImageSpec, parseSize, type ImageOpenOptions, type LogLevel } from '../index.js';
import { runNbdDaemon } from '../../gateway/nbd/main.js';
import { configFor } from './config.js';
import { formatBytes, table, withObjects } from './objects.js';

function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

async function withImages<T>(command: Command, fn: (images: BlockImages) => Promise<T>): Promise<T> {
  return withObjects(command, (client) => fn(new BlockImages(client)));
}

function lockOptions(o: { breakLock?: boolean }): ImageOpenOptions {
  return { owner: `cli.${process.pid}`, breakDeadLock: o.breakLock === true };
}

function needSnap(spec: string): { pool: string; image: string; snap: string } {
  const s = parseImageSpec(spec);
  if (s.snap === undefined) throw new StorageError('INVALID_ARGUMENT', `expected POOL/IMAGE@SNAP, not ${JSON.stringify(spec)}`);
  return { pool: s.pool, image: s.image, snap: s.snap };
}

function noSnap(spec: string): { pool: string; image: string } {
  const s = parseImageSpec(spec);
  if (s.snap !== undefined) throw new StorageError('INVALID_ARGUMENT', `expected POOL/IMAGE without @SNAP, not ${JSON.stringify(spec)}`);
  return s;
}

/** A progress bar on stderr, redrawn at most every 200 ms. */
function progress(label: string, total: number): { add(n: number): void; end(): void } {
  let done = 0;
  let last = 0;
  const started = Date.now();
  const draw = () => {
    const fraction = total === 0 ? 1 : done / total;
    const width = 30;
    const filled = Math.round(fraction * width);
    const seconds = (Date.now() - started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    process.stderr.write(`\r${label} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${formatBytes(done)}/${formatBytes(total)} ${formatBytes(rate)}/s `);
  };
  return {
    add(n) {
      done += n;
      if (Date.now() - last > 200) {
        last = Date.now();
        draw();
      }
    },
    end() {
      draw();
      process.stderr.write('\n');
    },
  };
}

export function registerImageCommands(program: Command): void {
  const image = program.command('image').description('block images (served over NBD by `shoal nbd`)');
  image.command('create').argument('<spec>', 'POOL/NAME').requiredOption('--size <size>', 'e.g. 10G').option('--object-size <size>', 'bytes per data object', '4M')
    .description('create a thin image')
    .action(async (spec: string, o: { size: string; objectSize: string }, c: Command) => {
      const { pool, image: name } = noSnap(spec);
      await withImages(c, async (images) => {
        const h = await images.create(pool, name, parseSize(o.size), { objectSize: parseSize(o.objectSize) });
        print(`${pool}/${name}: ${formatBytes(h.size)}, ${formatBytes(h.objectSize)} objects`);
      });
    });
  image.command('ls').argument('<pool>').option('--json', 'JSON output')
    .description('images of a pool')
    .action(async (pool: string, o: { json?: boolean }, c: Command) => {
      await withImages(c, async (images) => {
        const names = await images.list(pool);
        const infos = await Promise.all(names.map((n) => images.info(pool, n)));
        if (o.json) return print(JSON.stringify(infos.map((i) => ({ name: i.header.name, size: i.header.size, snapshots: i.header.snapshots.length, parent: i.header.parent ?? null }))));
        print(table([['NAME', 'SIZE', 'SNAPS', 'PARENT'], ...infos.map((i) => [i.header.name, formatBytes(i.header.size), String(i.header.snapshots.length), i.header.parent ? `${i.header.parent.pool}/${i.header.parent.image}@${i.header.parent.snapId}` : ''])]));
      });
    });
  image.command('info').argument('<spec>', 'POOL/NAME').option('--json', 'JSON output')
    .description('size, object size, features, snapshots, parent, lock holder')
    .action(async (spec: string, o: { json?: boolean }, c: Command) => {
      const { pool, image: name } = noSnap(spec);
      await withImages(c, async (images) => {
        const { header: h, lockedBy } = await images.info(pool, name);
        if (o.json) return print(JSON.stringify({ ...h, lockedBy: lockedBy ?? null }));
        print(
          [
            `image ${pool}/${name}`,
            `  size:        ${formatBytes(h.size)} (${h.size} bytes) in ${Math.ceil(h.size / h.objectSize)} objects of ${formatBytes(h.objectSize)}`,
            `  features:    ${h.features.join(', ')}`,
            `  created:     ${new Date(h.createdMs).toISOString()}`,
            `  snapshots:   ${h.snapshots.map((s) => s.name).join(', ') || 'none'}`,
            `  parent:      ${h.parent ? `${h.parent.pool}/${h.parent.image}@${h.parent.snapId} (overlap ${formatBytes(h.parent.overlap)})` : 'none'}`,
            `  children:    ${h.children.join(', ') || 'none'}`,
            `  lock:        ${lockedBy ? describeLock(lockedBy, Date.now()) : 'none'}`,
          ].join('\n'),
        );
      });
    });
  image.command('resize').argument('<spec>', 'POOL/NAME').requiredOption('--size <size>', 'new size, e.g. 20G').option('--break-lock', "break a dead holder's lock")
    .description('grow or shrink an image (shrinking drops the data past the end)')
    .action(async (spec: string, o: { size: string; breakLock?: boolean }, c: Command) => {
      const { pool, image: name } = noSnap(spec);
      await withImages(c, (images) => images.withImage(pool, name, lockOptions(o), (img) => img.resize(parseSize(o.size))));
      print(`${pool}/${name}: ${formatBytes(parseSize(o.size))}`);
    });
  image.command('rm').argument('<spec>', 'POOL/NAME').option('--break-lock', "break a dead holder's lock")
    .description('remove an image and its data (it must have no snapshots)')
    .action(async (spec: string, o: { breakLock?: boolean }, c: Command) => {
      const { pool, image: name } = noSnap(spec);
      await withImages(c, (images) => images.remove(pool, name, lockOptions(o)));
      print(`removed ${pool}/${name}`);
    });
  const snap = image.command('snap').description('snapshots of an image');
  snap.command('create').argument('<spec>', 'POOL/NAME@SNAP').option('--break-lock', "break a dead holder's lock")
    .description('take a snapshot (through the gateway that has the image open, if one has)')
    .action(async (spec: string, o: { breakLock?: boolean }, c: Command) => {
      const s = needSnap(spec);
      await withImages(c, (images) => images.snapshotRequest(s.pool, s.image, { op: 'snap-create', name: s.snap }, lockOptions(o)));
      print(`snapshot ${spec} created`);
    });
  snap.command('ls').argument('<spec>', 'POOL/NAME').option('--json', 'JSON output')
    .description('snapshots of an image')
    .action(async (spec: string, o: { json?: boolean }, c: Command) => {
      const { pool, image: name } = noSnap(spec);
      await withImages(c, async (images) => {
        const { header } = await images.info(pool, name);
        if (o.json) return print(JSON.stringify(header.snapshots));
        print(table([['ID', 'NAME', 'SIZE', 'CREATED'], ...header.snapshots.map((s) => [String(s.id), s.name, formatBytes(s.size), new Date(s.createdMs).toISOString()])]));
      });
    });
  snap.command('rollback').argument('<spec>', 'POOL/NAME@SNAP').option('--break-lock', "break a dead holder's lock")
    .description("make the image the snapshot's content again (nobody may have it open)")
    .action(async (spec: string, o: { breakLock?: boolean }, c: Command) => {
      const s = needSnap(spec);
      await withImages(c, (images) => images.withImage(s.pool, s.image, lockOptions(o), (img) => img.snapRollback(s.snap)));
      print(`${s.pool}/${s.image} rolled back to ${s.snap}`);
    });
  snap.command('rm').argument('<spec>', 'POOL/NAME@SNAP').option('--break-lock', "break a dead holder's lock")
    .description('remove a snapshot (it must have no clones)')
    .action(async (spec: string, o: { breakLock?: boolean }, c: Command) => {
      const s = needSnap(spec);
      await withImages(c, (images) => images.snapshotRequest(s.pool, s.image, { op: 'snap-rm', name: s.snap }, lockOptions(o)));
      print(`snapshot ${spec} removed`);
    });
  image.command('clone').argument('<parent>', 'POOL/NAME@SNAP').argument('<child>', 'POOL/NAME')
    .description('a new image that reads through to a snapshot until written (copy on write)')
    .action(async (parentSpec: string, childSpec: string, _o: unknown, c: Command) => {
      const p = needSnap(parentSpec);
      const child = noSnap(childSpec);
      await withImages(c, (images) => images.clone(p.pool, p.image, p.snap, child.pool, child.image));
      print(`${childSpec} cloned from ${parentSpec}`);
    });
  image.command('flatten').argument('<spec>', 'POOL/NAME').option('--break-lock', "break a dead holder's lock")
    .description("copy a clone's remaining parent data into it and detach it from the parent")
    .action(async (spec: string, o: { breakLock?: boolean }, c: Command) => {
      const { pool, image: name } = noSnap(spec);
      await withImages(c, (images) => images.flatten(pool, name, lockOptions(o)));
      print(`${spec} flattened`);
    });
  image.command('export').argument('<spec>', 'POOL/NAME or POOL/NAME@SNAP').argument('<file>', 'raw image file to write (sparse)')
    .description('copy an image (or snapshot) into a raw file, with a progress bar')
    .action(async (spec: string, file: string, _o: unknown, c: Command) => {
      const s = parseImageSpec(spec);
      await withImages(c, async (images) => {
        const opened = await images.open(s.pool, s.image, s.snap !== undefined ? { snap: s.snap } : { readOnly: true });
        const fd = openSync(file, 'w');
        try {
          const img = opened.image;
          ftruncateSync(fd, img.size);
          const bar = progress('export', img.size);
          await eachLimited(Math.ceil(img.size / img.objectSize), 4, async (i) => {
            const offset = i * img.objectSize;
            const length = Math.min(img.objectSize, img.size - offset);
            for (const e of await img.readExtents(offset, length)) if (e.data) writeSync(fd, e.data, 0, e.data.length, e.offset);
            bar.add(length);
          });
          bar.end();
        } finally {
          closeSync(fd);
          await opened.close();
        }
      });
      print(`exported ${spec} to ${file}`);
    });
  image.command('import').argument('<file>', 'raw image file').argument('<spec>', 'POOL/NAME (created)').option('--object-size <size>', 'bytes per data object', '4M')
    .description('create an image from a raw file (zero blocks stay thin), with a progress bar')
    .action(async (file: string, spec: string, o: { objectSize: string }, c: Command) => {
      const { pool, image: name } = noSnap(spec);
      let fd: number;
      try {
        fd = openSync(file, 'r');
      } catch (error) {
        throw new StorageError('NOT_FOUND', `cannot read ${file}: ${(error as Error).message}`);
      }
      try {
        const size = fstatSync(fd).size;
        if (size === 0) throw new StorageError('INVALID_ARGUMENT', `${file} is empty`);
        await withImages(c, async (images) => {
          await images.create(pool, name, size, { objectSize: parseSize(o.objectSize) });
          await images.withImage(pool, name, { owner: `cli.${process.pid}` }, async (img) => {
            const bar = progress('import', size);
            await eachLimited(Math.ceil(size / img.objectSize), 4, async (i) => {
              const offset = i * img.objectSize;
              const chunk = Buffer.alloc(Math.min(img.objectSize, size - offset));
              readSync(fd, chunk, 0, chunk.length, offset);
              // All-zero objects are not stored: the image stays thin.
              if (chunk.some((b) => b !== 0)) await img.write(offset, chunk);
              bar.add(chunk.length);
            });
            bar.end();
          });
        });
      } finally {
        closeSync(fd);
      }
      print(`imported ${file} as ${spec}`);
    });
}

export function registerNbdCommand(program: Command): void {
  program
    .command('nbd')
    .description('run the NBD gateway: exports POOL/IMAGE (read-write) and POOL/IMAGE@SNAP (read-only)')
    .option('--port <port>', 'port to listen on', '10809')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--break-dead-locks', 'take over images whose lock holder stopped renewing its lease')
    .option('--exit-with-parent', 'stop when the parent process exits (how `shoal up` runs it)')
    .addOption(new Option('--log-level <level>', 'debug, info, warn or error').default('info'))
    .option('--log-json', 'log JSON lines')
    .action(async (o: { port: string; host: string; breakDeadLocks?: boolean; exitWithParent?: boolean; logLevel: string; logJson?: boolean }, command: Command) => {
      if (!isLogLevel(o.logLevel)) throw new StorageError('INVALID_ARGUMENT', `unknown log level ${o.logLevel}`);
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new StorageError('INVALID_ARGUMENT', `--port must be 0-65535: ${o.port}`);
      const { config } = configFor(command);
      await runNbdDaemon({
        config,
        host: o.host,
        port,
        breakDeadLocks: o.breakDeadLocks === true,
        exitWithParent: o.exitWithParent === true,
        logLevel: o.logLevel as LogLevel,
        logJson: o.logJson ?? false,
        onListening: (address) => print(`NBD gateway listening on nbd://${address}`),
      });
    });
}
