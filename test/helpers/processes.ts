/**
 * Real daemons for integration tests: each is a child process of `node dist/src/cli/main.js`, tracked by pid, killed
 * (SIGKILL or SIGTERM) by the test, and always reaped when the test ends.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, rmSync, writeFileSync, closeSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clusterConfigToText, defaultMonitorSettings, defaultTimeouts, type ClusterConfig, type Timeouts } from '../../src/index.js';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const cliPath = join(repoRoot, 'dist', 'src', 'cli', 'main.js');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `shoal-${prefix}-`));
}

export async function writeClusterConfig(dir: string, monitorNames: string[], timeouts: Partial<Timeouts> = {}, snapshotEveryEntries?: number): Promise<{ path: string; config: ClusterConfig }> {
  const monitors = [];
  for (const name of monitorNames) monitors.push({ name, address: `127.0.0.1:${await freePort()}` });
  const config: ClusterConfig = {
    fsid: 'c0ffee00-0000-4000-8000-' + Date.now().toString(16).padStart(12, '0').slice(-12),
    monitors,
    timeouts: { ...defaultTimeouts, ...timeouts },
    monitor: { ...defaultMonitorSettings, ...(snapshotEveryEntries ? { snapshotEveryEntries } : {}) },
  };
  const path = join(dir, 'shoal.conf');
  writeFileSync(path, clusterConfigToText(config));
  return { path, config };
}

export class Daemon {
  readonly name: string;
  readonly args: string[];
  readonly logPath: string;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();

  constructor(name: string, args: string[], logPath: string) {
    this.name = name;
    this.args = args;
    this.logPath = logPath;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  start(): void {
    if (this.running) throw new Error(`${this.name} is already running`);
    const log = openSync(this.logPath, 'a');
    const child = spawn(process.execPath, ['--enable-source-maps', cliPath, ...this.args], { stdio: ['ignore', log, log] });
    closeSync(log);
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  /** kill -9: no chance to flush or clean up. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.#child?.kill('SIGKILL');
    await this.#exited;
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.#child?.kill('SIGTERM');
    const timer = setTimeout(() => this.#child?.kill('SIGKILL'), 5000);
    await this.#exited;
    clearTimeout(timer);
  }

  log(): string {
    try {
      return readFileSync(this.logPath, 'utf8');
    } catch {
      return '';
    }
  }
}

/** Runs the CLI to completion. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
