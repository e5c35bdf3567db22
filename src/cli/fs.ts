/**
 * `shoal fs create|check` and `shoal mount`: POSIX filesystems over the cluster (fuse/). `shoal mount` runs in the
 * foreground until SIGTERM/SIGINT, then unmounts cleanly.
 */
import { Option, type Command } from 'commander';
import { readFileSync } from 'node:fs';
import { ObjectClient, StorageError, createLogger, gatewayHeapGrowingPercent, isLogLevel, tuneGcForBulkData, type ClusterConfig, type LogLevel } from '../index.js';
import { FileSystem, checkFileSystem, createFileSystem, readSuperblock } from '../../fuse/fs/index.js';
import { mountFileSystem } from '../../fuse/adapter/mount.js';
import { configFor } from './config.js';
import { withObjects } from './objects.js';

function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

/** How long one operation may take before a mount answers ETIMEDOUT (the cluster is unreachable). */
const mountOpTimeoutMs = 10_000;

export function registerFsCommands(program: Command): void {
  const fs = program.command('fs').description('POSIX filesystems stored in the cluster (create, check)');
  fs.command('create').argument('<name>').option('--data-pool <pool>', 'existing pool for file data (default: a new pool fs.NAME.data)')
    .description('create a filesystem: pools fs.NAME.meta (and fs.NAME.data), superblock and root directory')
    .action(async (name: string, o: { dataPool?: string }, c: Command) => {
      await withObjects(c, async (client) => {
        const sb = await createFileSystem(client, name, { ...(o.dataPool ? { dataPool: o.dataPool } : {}) });
        print(`filesystem ${name} created (metadata pool fs.${name}.meta, data pool ${sb.dataPool})`);
      });
    });
  fs.command('check').argument('<name>').option('--repair', 'repair what is wrong').option('--json', 'print the report as JSON')
    .description('verify a filesystem (entries, link counts, orphans, pending renames, data objects); exit 7 if problems remain')
    .action(async (name: string, o: { repair?: boolean; json?: boolean }, c: Command) => {
      await withObjects(c, async (client) => {
        const report = await checkFileSystem(client, name, { repair: o.repair ?? false });
        if (o.json) print(JSON.stringify(report));
        else {
          print(`filesystem ${name}: ${report.inodes} inodes (${report.directories} directories, ${report.files} files), ${report.dataObjects} data objects`);
          for (const p of report.problems) print(`  problem: ${p}`);
          if (report.young) print(`  ${report.young} inodes too young to judge (creates in progress?)`);
          print(report.problems.length === 0 ? 'clean' : o.repair ? `${report.repaired} repairs made` : `${report.problems.length} problems (run with --repair)`);
        }
        if (report.problems.length > 0 && !o.repair) throw new StorageError('CORRUPT_DATA', `filesystem ${name} has ${report.problems.length} problems`);
      });
    });

  program.command('mount').argument('<name>', 'filesystem').argument('<path>', 'mount point (an existing directory)')
    .option('-o, --options <opts>', 'mount options passed through (e.g. allow_other,ro)')
    .option('--debug', 'print every FUSE request')
    .addOption(new Option('--log-level <level>', 'debug, info, warn or error').default('info'))
    .description('mount a filesystem with FUSE, in the foreground; SIGTERM or Ctrl-C unmounts')
    .action(async (name: string, path: string, o: { options?: string; debug?: boolean; logLevel: string }, c: Command) => {
      if (!isLogLevel(o.logLevel)) throw new StorageError('INVALID_ARGUMENT', `unknown log level ${o.logLevel}`);
      tuneGcForBulkData(gatewayHeapGrowingPercent);
      const logger = createLogger({ name: `mount.${name}`, level: o.logLevel as LogLevel });
      const { config } = configFor(c);
      const client = new ObjectClient(config, { clientName: `client.fs.${process.pid}`, opTimeoutMs: mountOpTimeoutMs });
      await client.start();
      let mount;
      try {
        const filesystem = await FileSystem.open(client, name, { live: true, writeBack: true, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, logger });
        mount = await mountFileSystem(filesystem, path, { options: o.options ? [o.options] : [], debug: o.debug ?? false, timeoutMs: mountOpTimeoutMs + 5000, logger });
      } catch (error) {
        await client.stop();
        throw error;
      }
      print(`filesystem ${name} mounted on ${path} (pid ${process.pid}); SIGTERM or Ctrl-C unmounts`);
      const active = mount;
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          logger.info('unmounting', { signal });
          void active.unmount().then(() => client.stop()).then(resolve, (error: unknown) => {
            logger.error('unmount failed', { error: String(error) });
            resolve();
          });
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
      const r = active.requests();
      print(`filesystem ${name} unmounted from ${path} (${r.reads} read requests of up to ${r.largestRead} bytes, ${r.writes} write requests of up to ${r.largestWrite} bytes)`);
    });
}

/** For `shoal up --mount`: the filesystem "default", created on first use. */
export async function ensureDefaultFileSystem(config: ClusterConfig): Promise<void> {
  const client = new ObjectClient(config);
  await client.start();
  try {
    await readSuperblock(client, 'default').catch(async (error: unknown) => {
      if (!(error instanceof StorageError && error.code === 'NOT_FOUND')) throw error;
      await createFileSystem(client, 'default');
    });
  } finally {
    await client.stop();
  }
}

function isMounted(path: string): boolean {
  return readFileSync('/proc/self/mounts', 'utf8').split('\n').some((line) => line.split(' ')[1] === path);
}

/** Waits until `path` is a mount point (or the mount process died). */
export async function waitForMount(path: string, timeoutMs: number, exited: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!isMounted(path)) {
    if (exited()) throw new StorageError('UNAVAILABLE', `the mount of ${path} exited at start (see mount.log)`);
    if (Date.now() > deadline) throw new StorageError('TIMEOUT', `${path} was not mounted within ${timeoutMs} ms (see mount.log)`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
