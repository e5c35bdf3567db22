/**
 * Finding the cluster: `--conf FILE`, then `$SHOAL_CONF`, then `./.shoal/shoal.conf` (what `shoal up` writes).
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { StorageError, parseClusterConfig, type ClusterConfig } from '../common/index.js';
import { MonitorClient } from '../client/index.js';

export const defaultConfPath = '.shoal/shoal.conf';

export function findConfigPath(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const candidates: [string, string | undefined][] = [
    ['--conf', explicit],
    ['$SHOAL_CONF', env['SHOAL_CONF'] || undefined],
    ['default', defaultConfPath],
  ];
  for (const [source, path] of candidates) {
    if (path === undefined) continue;
    if (existsSync(path)) return resolve(path);
    if (source !== 'default') throw new StorageError('NOT_FOUND', `config file ${path} (from ${source}) does not exist`);
  }
  throw new StorageError(
    'NOT_FOUND',
    `no cluster config: pass --conf FILE, set SHOAL_CONF, or run \`shoal up\` (which writes ./${defaultConfPath})`,
  );
}

export function loadConfig(path: string): { path: string; config: ClusterConfig } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new StorageError('NOT_FOUND', `cannot read config ${path}: ${(error as Error).message}`);
  }
  return { path, config: parseClusterConfig(text, path) };
}

/** The config for a command, honouring the global `--conf` option. */
export function configFor(command: Command): { path: string; config: ClusterConfig } {
  const options = command.optsWithGlobals<{ conf?: string }>();
  return loadConfig(findConfigPath(options.conf));
}

/** Runs `fn` with a monitor client for the command's cluster, closing it afterwards. */
export async function withMonitors<T>(command: Command, fn: (client: MonitorClient, config: ClusterConfig) => Promise<T>): Promise<T> {
  const { config } = configFor(command);
  const client = new MonitorClient(config.monitors, {
    callTimeoutMs: config.timeouts.monitorCallTimeoutMs,
    commandTimeoutMs: config.timeouts.commandTimeoutMs,
  });
  try {
    return await fn(client, config);
  } finally {
    client.close();
  }
}
