/** A `shoal up` cluster for a benchmark: 1 monitor and N OSD processes on 127.0.0.1, data in a temp directory. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterConfigToText, defaultMonitorSettings, defaultTimeouts, parseClusterConfig, type ClusterConfig } from '../../src/index.js';
import { freePortPair } from './ports.js';

export interface BenchCluster {
  dir: string;
  config: ClusterConfig;
  /** Stops every daemon and removes the directory. */
  stop(): Promise<void>;
}

export async function startBenchCluster(prefix: string, osds: number): Promise<BenchCluster> {
  const dir = mkdtempSync(join(process.env['SHOAL_BENCH_DIR'] ?? tmpdir(), `shoal-bench-${prefix}-`));
  const [monPort, osdPort] = await freePortPair();
  const conf = join(dir, 'shoal.conf');
  writeFileSync(conf, clusterConfigToText({ fsid: 'b0000000-0000-4000-8000-000000000001', monitors: [{ name: 'a', address: `127.0.0.1:${monPort}` }], timeouts: { ...defaultTimeouts }, monitor: { ...defaultMonitorSettings } }));
  const cli = new URL('../../src/cli/main.js', import.meta.url).pathname;
  const up: ChildProcess = spawn(process.execPath, [...process.execArgv, cli, 'up', '--dir', dir, '--osds', String(osds), '--osd-port', String(osdPort), '--no-pool', '--no-s3'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const stop = async () => {
    up.kill('SIGTERM');
    if (up.exitCode === null) await new Promise((r) => up.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  };
  let output = '';
  up.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  try {
    for (let waited = 0; !output.includes('is up'); waited += 100) {
      if (waited > 60_000 || up.exitCode !== null) throw new Error(`shoal up did not start:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { dir, config: parseClusterConfig(readFileSync(conf, 'utf8')), stop };
}
