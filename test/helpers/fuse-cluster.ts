/**
 * `shoal up --mount` for end-to-end filesystem tests: 1 monitor, 3 OSDs and the FUSE mount of filesystem "default"
 * as child processes of one `shoal up` (tracked by pid, stopped with SIGTERM, which unmounts and stops every daemon).
 * The test process itself is not the FUSE server, so it may use synchronous fs calls on the mount.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Daemon, cliPath, removeDir, repoRoot, tempDir, waitFor, writeClusterConfig } from './processes.js';

export interface FuseCluster {
  dir: string;
  mnt: string;
  confPath: string;
  /** Runs `shoal --conf <conf> ...args` to completion. */
  cli(args: string[]): { status: number; stdout: string; stderr: string };
  /** The mount process's pid (from `<dir>/mount.pid`). */
  mountPid(): number | undefined;
  pidOf(name: string): number | undefined;
  /** A second, separate mount of filesystem "default" (its own process); stop it with `stop()`. */
  extraMount(path: string): Promise<Daemon>;
  output(): string;
  /** kill -9 of the supervisor and every daemon (a power cut); detaches the dead mounts. */
  killAll(): Promise<void>;
  /** Stops everything; removes the directory unless `keep` (or the test run failed). */
  stop(keep?: boolean): Promise<void>;
}

export function fuseAvailable(): string | undefined {
  if (!existsSync('/dev/fuse')) return 'no /dev/fuse on this machine';
  if (process.getuid?.() !== 0) return 'FUSE mounts in these tests need root';
  const native = join(repoRoot, 'node_modules', 'fuse-native');
  if (!existsSync(join(native, 'build', 'Release', 'fuse.node')) || !readFileSync(join(native, 'fuse-native.c'), 'utf8').includes('shoal patch: POSIX (fcntl) locks')) {
    return 'fuse-native is not patched and built (scripts/patch-fuse-native.mjs, run by npm run setup, needs build-essential and libfuse-dev)';
  }
  return undefined;
}

export function isMounted(path: string): boolean {
  return readFileSync('/proc/self/mounts', 'utf8').split('\n').some((line) => line.split(' ')[1] === path);
}

/** Starts a new cluster, or (with `dir`) restarts the one whose files are there. */
export async function startFuseCluster(prefix: string, options: { osds?: number; dir?: string } = {}): Promise<FuseCluster> {
  const dir = options.dir ?? tempDir(prefix);
  const confPath = options.dir ? join(dir, 'shoal.conf') : (await writeClusterConfig(dir, ['a'], { tickMs: 50, osdHeartbeatIntervalMs: 300, osdGraceMs: 2500, commandTimeoutMs: 5000, monitorCallTimeoutMs: 2000 })).path;
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt, { recursive: true });
  const args = ['up', '--dir', dir, '--osds', String(options.osds ?? 3), '--osd-port', '0', '--no-s3', '--no-nbd', '--mount', mnt];
  const up: ChildProcess = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  up.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  up.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => up.once('exit', () => resolve()));
  const extras: Daemon[] = [];
  const pidOf = (name: string) => {
    const file = join(dir, `${name}.pid`);
    if (!existsSync(file)) return undefined;
    const pid = Number(readFileSync(file, 'utf8'));
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  };
  const stop = async (keep = false) => {
    for (const d of extras) await d.stop();
    if (up.exitCode === null && up.signalCode === null) {
      up.kill('SIGTERM');
      await exited;
    }
    // A mount whose process was killed leaves a dead FUSE mount behind: detach it.
    for (const path of [mnt, ...extras.map((d) => d.args[2] ?? '')]) if (path && isMounted(path)) spawnSync('fusermount', ['-uz', path]);
    if (keep) return;
    if (process.exitCode === undefined || process.exitCode === 0) removeDir(dir);
    else process.stderr.write(`cluster files kept in ${dir}\n`);
  };
  try {
    const state = await waitFor('shoal up --mount to start', 90_000, () => (up.exitCode !== null ? 'exited' : output.includes('is up') ? 'up' : undefined));
    if (state === 'exited') throw new Error(`shoal up exited:\n${output}`);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    dir,
    mnt,
    confPath,
    cli: (cliArgs) => {
      const r = spawnSync(process.execPath, [cliPath, '--conf', confPath, ...cliArgs], { encoding: 'utf8', timeout: 120_000 });
      return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
    },
    mountPid: () => pidOf('mount'),
    pidOf,
    extraMount: async (path) => {
      mkdirSync(path, { recursive: true });
      const d = new Daemon(`mount-${extras.length}`, ['mount', 'default', path, '--conf', confPath], join(dir, `mount-${extras.length}.log`));
      extras.push(d);
      d.start();
      await waitFor(`${path} to be mounted`, 30_000, () => (isMounted(path) ? true : d.running ? undefined : Promise.reject(new Error(d.log()))));
      return d;
    },
    output: () => output,
    killAll: async () => {
      const pids = ['mon.a', 'osd.0', 'osd.1', 'osd.2', 'mount'].map(pidOf).filter((p): p is number => p !== undefined);
      up.kill('SIGKILL');
      for (const d of extras) await d.kill();
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await exited;
      await waitFor('every daemon to die', 10_000, () => (pids.every((pid) => { try { process.kill(pid, 0); return false; } catch { return true; } }) ? true : undefined));
      for (const path of [mnt, ...extras.map((d) => d.args[2] ?? '')]) if (path && isMounted(path)) spawnSync('fusermount', ['-uz', path]);
    },
    stop,
  };
}
