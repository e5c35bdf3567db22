/**
 * `shoal up` with the NBD gateway for end-to-end tests: 1 monitor, 3 OSDs and the gateway as one child process of
 * the test (stopped with SIGTERM, which stops its daemons), and helpers to run the real NBD clients.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliPath, freePort, removeDir, tempDir, waitFor, writeClusterConfig } from '../helpers/processes.js';

export interface NbdCluster {
  dir: string;
  conf: string;
  port: number;
  uri(exportName: string): string;
  /** Runs `shoal --conf … ARGS`. */
  shoal(args: string[]): { status: number; stdout: string; stderr: string };
  pidOf(daemon: string): number | undefined;
  stop(): Promise<void>;
}

export interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs a client to completion (bounded), output captured. */
export function run(command: string, args: string[], timeoutMs = 180_000): Run {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

/** The first of `tools` not on this machine (undefined: all there). */
export function missingTool(tools: string[]): string | undefined {
  return tools.find((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
}

export async function startNbdCluster(prefix: string, options: { restart?: boolean } = {}): Promise<NbdCluster> {
  const dir = tempDir(prefix);
  const { path: conf } = await writeClusterConfig(dir, ['a'], { tickMs: 50, osdHeartbeatIntervalMs: 300, osdGraceMs: 2500, commandTimeoutMs: 5000, monitorCallTimeoutMs: 2000 });
  const port = await freePort();
  const args = ['up', '--dir', dir, '--osds', '3', '--osd-port', '0', '--no-s3', '--nbd-port', String(port)];
  if (options.restart) args.push('--restart');
  const up: ChildProcess = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  up.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  up.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => up.once('exit', () => resolve()));
  const stop = async () => {
    if (up.exitCode === null && up.signalCode === null) {
      up.kill('SIGTERM');
      await exited;
    }
    if (process.exitCode === undefined || process.exitCode === 0) removeDir(dir);
    else process.stderr.write(`cluster files kept in ${dir}\n`);
  };
  try {
    const state = await waitFor('shoal up with NBD to start', 90_000, () => (up.exitCode !== null ? 'exited' : output.includes('is up') ? 'up' : undefined));
    if (state === 'exited') throw new Error(`shoal up exited:\n${output}`);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    dir,
    conf,
    port,
    uri: (name) => `nbd://127.0.0.1:${port}/${name}`,
    shoal: (a) => run(process.execPath, [cliPath, '--conf', conf, ...a]),
    pidOf: (daemon) => {
      const file = join(dir, `${daemon}.pid`);
      if (!existsSync(file)) return undefined;
      const pid = Number(readFileSync(file, 'utf8'));
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    },
    stop,
  };
}
