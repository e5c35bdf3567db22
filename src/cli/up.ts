/**
 * `shoal up`: a whole local cluster on 127.0.0.1 for development and tests. Each daemon is its own child process of
 * this supervisor, with `DIR/<name>.pid` and `DIR/<name>.log`, so anyone can kill one by pid. A daemon that dies is
 * reported and, only with `--restart`, started again. Ctrl-C or SIGTERM stops everything; the next `shoal up` reuses
 * the data and the config in DIR.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { connect } from 'node:net';
import {
  MonitorClient,
  ObjectClient,
  StorageError,
  clusterConfigToText,
  defaultMonitorSettings,
  defaultTimeouts,
  type ClusterConfig,
} from '../index.js';
import { loadConfig } from './config.js';
import { openS3Store } from '../../gateway/s3/main.js';
import { ensureDefaultFileSystem, waitForMount } from './fs.js';

export const defaultPorts = { monitor: 7400, osd: 7600, s3: 7480, nbd: 10809 } as const;

interface UpOptions {
  dir: string;
  osdPort: string;
  mons: string;
  osds: string;
  restart?: boolean;
  pool?: boolean;
  s3Port: string;
  s3?: boolean;
  nbdPort: string;
  nbd?: boolean;
  mount?: string;
}

interface Child {
  name: string;
  args: string[];
  process?: ChildProcess;
  stopping: boolean;
}

const cli = fileURLToPath(new URL('./main.js', import.meta.url));

function count(name: string, text: string, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new StorageError('INVALID_ARGUMENT', `${name} must be 1..${max}`);
  return n;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, not yet reaped by whoever adopted it) answers signal 0 but runs no more.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

function ensureConfig(dir: string, mons: number): { path: string; config: ClusterConfig } {
  const path = join(dir, 'shoal.conf');
  if (existsSync(path)) return loadConfig(path);
  const config: ClusterConfig = {
    fsid: randomUUID(),
    monitors: Array.from({ length: mons }, (_, i) => ({ name: String.fromCharCode(97 + i), address: `127.0.0.1:${defaultPorts.monitor + i}` })),
    timeouts: { ...defaultTimeouts, osdGraceMs: 6000 },
    monitor: { ...defaultMonitorSettings },
  };
  writeFileSync(path, clusterConfigToText(config));
  return { path, config };
}

export function registerUpCommand(program: Command): void {
  program
    .command('up')
    .description('run a local cluster (monitors and OSDs as child processes) with data and config in --dir')
    .option('--dir <dir>', 'data, config, pid and log files', '.shoal')
    .option('--mons <n>', 'monitors (a new cluster only; an existing one keeps its config)', '1')
    .option('--osds <n>', 'OSDs', '3')
    .option('--osd-port <port>', 'first OSD port (osd.N listens on it + N; 0: each OSD takes any free port)', String(defaultPorts.osd))
    .option('--restart', 'restart a daemon that dies')
    .option('--no-pool', 'do not create the default pool "data"')
    .option('--s3-port <port>', 'port of the S3 gateway', String(defaultPorts.s3))
    .option('--no-s3', 'do not run the S3 gateway')
    .option('--nbd-port <port>', 'port of the NBD gateway', String(defaultPorts.nbd))
    .option('--no-nbd', 'do not run the NBD gateway')
    .option('--mount <path>', 'mount the filesystem "default" (created if missing) on this directory with FUSE')
    .action(async (options: UpOptions, command: Command) => {
      const dir = resolve(options.dir);
      mkdirSync(dir, { recursive: true });
      const osds = count('--osds', options.osds, 64);
      const osdPortBase = options.osdPort === '0' ? 0 : count('--osd-port', options.osdPort, 65000);
      const { path: confPath, config } = ensureConfig(dir, count('--mons', options.mons, 7));
      const children: Child[] = [
        ...config.monitors.map((m) => ({ name: `mon.${m.name}`, args: ['mon', '--id', m.name, '--conf', confPath, '--data', join(dir, `mon.${m.name}`)], stopping: false })),
        ...Array.from({ length: osds }, (_, i) => ({
          name: `osd.${i}`,
          args: ['osd', '--id', String(i), '--conf', confPath, '--data', join(dir, `osd.${i}`), '--listen', `127.0.0.1:${osdPortBase === 0 ? 0 : osdPortBase + i}`, '--host', `node-${i}`],
          stopping: false,
        })),
      ];
      const s3Port = options.s3 === false ? 0 : count('--s3-port', options.s3Port, 65535);
      if (s3Port > 0) children.push({ name: 's3', args: ['s3', '--conf', confPath, '--host', '127.0.0.1', '--port', String(s3Port)], stopping: false });
      let nbdPort = options.nbd === false ? 0 : count('--nbd-port', options.nbdPort, 65535);
      // Another cluster on this machine may have the default NBD port: then run without NBD rather than fail.
      const nbdOptional = command.getOptionValueSource('nbdPort') === 'default';
      if (nbdPort > 0 && nbdOptional && (await isListening(nbdPort))) {
        process.stderr.write(`shoal up: port ${nbdPort} is in use; not running the NBD gateway (choose one with --nbd-port)\n`);
        nbdPort = 0;
      }
      if (nbdPort > 0) children.push({ name: 'nbd', args: ['nbd', '--conf', confPath, '--host', '127.0.0.1', '--port', String(nbdPort), '--exit-with-parent'], stopping: false });
      const mountPath = options.mount ? resolve(options.mount) : undefined;
      if (mountPath) children.push({ name: 'mount', args: ['mount', 'default', mountPath, '--conf', confPath, '-o', 'allow_other'], stopping: false });
      for (const child of children) {
        const pidFile = join(dir, `${child.name}.pid`);
        if (existsSync(pidFile)) {
          const pid = Number(readFileSync(pidFile, 'utf8'));
          if (Number.isInteger(pid) && isAlive(pid)) {
            // The monitors and OSDs of DIR are not running (checked first), so a gateway still running is an orphan of
            // a supervisor that was killed: it holds no state, stop it and start a new one.
            if (child.name === 'nbd' && isOrphanGateway(pid, confPath)) await stopOrphan(pid);
            else throw new StorageError('ALREADY_EXISTS', `${child.name} already runs (pid ${pid}); is another \`shoal up\` using ${dir}?`);
          }
        }
      }
      let shuttingDown = false;
      let s3Admin: { accessKey: string; secretKey: string } | undefined;
      const start = (child: Child) => {
        const log = openSync(join(dir, `${child.name}.log`), 'a');
        // Daemons run with the supervisor's Node flags (heap size, --cpu-prof for profiling a whole cluster).
        const proc = spawn(process.execPath, [...process.execArgv, cli, ...child.args], { stdio: ['ignore', log, log] });
        closeSync(log);
        child.process = proc;
        writeFileSync(join(dir, `${child.name}.pid`), String(proc.pid));
        proc.once('exit', (code, signal) => {
          rmSync(join(dir, `${child.name}.pid`), { force: true });
          if (shuttingDown || child.stopping) return;
          // An NBD gateway on the default port that exits by itself most likely lost the port to another cluster.
          const restart = options.restart && !(child.name === 'nbd' && nbdOptional && signal === null);
          process.stderr.write(`shoal up: ${child.name} exited (${signal ?? `code ${code}`}); ${restart ? 'restarting it' : options.restart ? 'not restarting it (see its log)' : 'not restarting it (use --restart)'}\n`);
          if (restart) setTimeout(() => !shuttingDown && start(child), 1000);
        });
      };
      for (const child of children.filter((c) => c.name.startsWith('mon.'))) start(child);
      const monitors = new MonitorClient(config.monitors, { callTimeoutMs: 2000, commandTimeoutMs: config.timeouts.commandTimeoutMs });
      const stopAll = async (signal: string) => {
        if (shuttingDown) return;
        shuttingDown = true;
        process.stderr.write(`shoal up: ${signal}: stopping ${children.length} daemons\n`);
        monitors.close();
        // Gateways first, then OSDs (so they do not report each other to monitors that are going away), then monitors.
        const byKind = [children.filter((c) => c.name === 's3' || c.name === 'nbd' || c.name === 'mount'), children.filter((c) => c.name.startsWith('osd.')), children.filter((c) => c.name.startsWith('mon.'))];
        for (const group of byKind) {
          await Promise.all(
            group.map(
              (c) =>
                new Promise<void>((done) => {
                  const proc = c.process;
                  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return done();
                  const force = setTimeout(() => proc.kill('SIGKILL'), 10_000);
                  proc.once('exit', () => (clearTimeout(force), done()));
                  proc.kill('SIGTERM');
                }),
            ),
          );
        }
        process.stderr.write('shoal up: stopped\n');
      };
      const stopped = new Promise<void>((resolveStopped) => {
        process.once('SIGINT', () => void stopAll('SIGINT').then(resolveStopped));
        process.once('SIGTERM', () => void stopAll('SIGTERM').then(resolveStopped));
      });
      try {
        await waitForMap(monitors, 30_000);
        for (const child of children.filter((c) => c.name.startsWith('osd.'))) start(child);
        await waitForOsds(monitors, osds, 30_000);
        if (options.pool !== false) {
          const map = await monitors.getMap();
          if (map.pools.length === 0) {
            await monitors.command({ poolCreate: { name: 'data', size: Math.min(3, osds), pgNum: 32, application: 'rados' } });
          }
        }
        if (s3Port > 0) {
          s3Admin = await ensureS3Admin(dir, config);
          const s3 = children.find((c) => c.name === 's3') as Child;
          start(s3);
          await waitForPort(s3Port, 30_000, () => s3.process?.exitCode !== null && s3.process?.exitCode !== undefined);
        }
        if (nbdPort > 0) {
          const nbd = children.find((c) => c.name === 'nbd') as Child;
          start(nbd);
          try {
            await waitForPort(nbdPort, 30_000, () => nbd.process?.exitCode !== null && nbd.process?.exitCode !== undefined, 'NBD gateway', 'nbd.log');
          } catch (error) {
            if (!nbdOptional) throw error;
            // Lost a race for the default port: go on without NBD.
            nbd.stopping = true;
            nbd.process?.kill('SIGTERM');
            process.stderr.write(`shoal up: the NBD gateway did not start (${(error as Error).message}); running without it\n`);
            nbdPort = 0;
          }
        }
        if (mountPath) {
          await ensureDefaultFileSystem(config);
          const mount = children.find((c) => c.name === 'mount') as Child;
          start(mount);
          await waitForMount(mountPath, 30_000, () => mount.process?.exitCode !== null && mount.process?.exitCode !== undefined);
        }
      } catch (error) {
        await stopAll('start failed');
        throw error;
      }
      const map = await monitors.getMap();
      const lines = [
        `Shoal cluster ${config.fsid} is up (data in ${dir})`,
        `  config:    ${confPath}   (shoal --conf ${confPath} status, or run shoal commands from ${resolve(dir, '..')})`,
        ...config.monitors.map((m) => `  mon.${m.name}:     ${m.address}   pid ${children.find((c) => c.name === `mon.${m.name}`)?.process?.pid}   log ${join(dir, `mon.${m.name}.log`)}`),
        ...map.osds.filter((o) => o.id < osds).map((o) => `  osd.${o.id}:     ${o.address}   pid ${children.find((c) => c.name === `osd.${o.id}`)?.process?.pid}   log ${join(dir, `osd.${o.id}.log`)}`),
        `  pools:     ${map.pools.map((p) => p.name).join(', ') || 'none'}`,
        ...(s3Admin
          ? [
              `  s3:        http://127.0.0.1:${s3Port}   pid ${children.find((c) => c.name === 's3')?.process?.pid}   log ${join(dir, 's3.log')}`,
              `             user admin: access key ${s3Admin.accessKey}  secret key ${s3Admin.secretKey}   (also in ${join(dir, 's3-admin.json')})`,
            ]
          : []),
        ...(nbdPort > 0 ? [`  nbd:       nbd://127.0.0.1:${nbdPort}/POOL/IMAGE   pid ${children.find((c) => c.name === 'nbd')?.process?.pid}   log ${join(dir, 'nbd.log')}`] : []),
        ...(mountPath ? [`  mount:     filesystem default on ${mountPath}   pid ${children.find((c) => c.name === 'mount')?.process?.pid}   log ${join(dir, 'mount.log')}`] : []),
        'Ctrl-C stops the cluster; `shoal up` again restarts it on the same data.',
      ];
      process.stdout.write(lines.join('\n') + '\n');
      await stopped;
    });
}

async function waitForMap(monitors: MonitorClient, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await monitors.getMap()).epoch > 0) return;
    } catch (error) {
      if (Date.now() > deadline) throw new StorageError('TIMEOUT', `monitors did not form a quorum within ${timeoutMs} ms: ${(error as Error).message}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function waitForOsds(monitors: MonitorClient, osds: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const map = await monitors.getMap().catch(() => undefined);
    const up = map?.osds.filter((o) => o.id < osds && o.up).length ?? 0;
    if (up >= osds) return;
    if (Date.now() > deadline) throw new StorageError('TIMEOUT', `only ${up} of ${osds} OSDs booted within ${timeoutMs} ms (see the osd.N.log files)`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The admin user's keys: created in the cluster on first start, kept in DIR/s3-admin.json for the next ones. */
async function ensureS3Admin(dir: string, config: ClusterConfig): Promise<{ accessKey: string; secretKey: string }> {
  const file = join(dir, 's3-admin.json');
  if (existsSync(file)) {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { accessKey: string; secretKey: string };
    if (typeof saved.accessKey === 'string' && typeof saved.secretKey === 'string') return saved;
  }
  const client = new ObjectClient(config);
  await client.start();
  try {
    const store = openS3Store(client, 'error');
    await store.ensurePools();
    const users = await store.listUsers();
    const key = users.some((u) => u.name === 'admin') ? await store.createKey('admin') : await store.createUser('admin');
    writeFileSync(file, JSON.stringify(key) + '\n', { mode: 0o600 });
    return key;
  } finally {
    await client.stop();
  }
}

function isOrphanGateway(pid: number, confPath: string): boolean {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return args.includes('nbd') && args.includes(confPath) && args.includes('--exit-with-parent');
  } catch {
    return false;
  }
}

async function stopOrphan(pid: number): Promise<void> {
  process.kill(pid, 'SIGTERM');
  for (let waited = 0; isAlive(pid); waited += 100) {
    if (waited > 10_000) process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
  }
}

function isListening(port: number): Promise<boolean> {
  return new Promise<boolean>((resolveOpen) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolveOpen(true)));
    socket.once('error', () => resolveOpen(false));
  });
}

async function waitForPort(port: number, timeoutMs: number, exited: () => boolean, what = 'the S3 gateway', log = 's3.log'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await isListening(port)) return;
    if (exited()) throw new StorageError('UNAVAILABLE', `${what} exited at start (see ${log})`);
    if (Date.now() > deadline) throw new StorageError('TIMEOUT', `${what} did not listen on port ${port} within ${timeoutMs} ms (see ${log})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
