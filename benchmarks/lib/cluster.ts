/** A `shoal up` cluster for a benchmark: its own directory, free ports, default timeouts; stopped and removed after. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterConfigToText, defaultMonitorSettings, defaultTimeouts, parseClusterConfig, type ClusterConfig, type Timeouts } from '../../src/index.js';
import { freePort } from './ports.js';

export interface BenchCluster {
  dir: string;
  confPath: string;
  config: ClusterConfig;
  /** What `shoal up` printed. */
  output(): string;
  stop(): Promise<void>;
}

export async function startBenchCluster(name: string, options: { osds: number; upArgs?: string[]; timeouts?: Partial<Timeouts> }): Promise<BenchCluster> {
  const dir = mkdtempSync(join(process.env['SHOAL_BENCH_DIR'] ?? tmpdir(), `shoal-bench-${name}-`));
  // OSDs take any free port: a fixed base could meet a port the OS lent to an outgoing connection.
  const monPort = await freePort();
  const confPath = join(dir, 'shoal.conf');
  writeFileSync(
    confPath,
    clusterConfigToText({
      fsid: 'b0000000-0000-4000-8000-000000000001',
      monitors: [{ name: 'a', address: `127.0.0.1:${monPort}` }],
      timeouts: { ...defaultTimeouts, ...options.timeouts },
      monitor: { ...defaultMonitorSettings },
    }),
  );
  const cli = new URL('../../src/cli/main.js', import.meta.url).pathname;
  const args = ['up', '--dir', dir, '--osds', String(options.osds), '--osd-port', '0', '--no-pool', '--no-s3', '--no-nbd', ...(options.upArgs ?? [])];
  const up: ChildProcess = spawn(process.execPath, [...process.execArgv, cli, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  up.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  const stop = async () => {
    if (up.exitCode === null && up.signalCode === null) {
      up.kill('SIGTERM');
      await new Promise((r) => up.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let waited = 0; !output.includes('is up'); waited += 100) {
      if (waited > 60_000 || up.exitCode !== null) throw new Error(`shoal up did not start:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { dir, confPath, config: parseClusterConfig(readFileSync(confPath, 'utf8')), output: () => output, stop };
}
