/**
 * The monitor daemon (`shoal mon --id a --conf FILE`): wires the real clock, randomness, logger and disk into
 * createMonitor and stops cleanly on SIGTERM/SIGINT.
 */
import { randomInt } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { Random, createLogger, systemClock, type ClusterConfig, type LogLevel } from '../src/index.js';
import { createMonitor } from './monitor.js';

export interface MonitorDaemonOptions {
  id: string;
  config: ClusterConfig;
  dataDir: string;
  logLevel: LogLevel;
  logJson: boolean;
}

export async function runMonitorDaemon(options: MonitorDaemonOptions): Promise<void> {
  const logger = createLogger({ name: `mon.${options.id}`, level: options.logLevel, json: options.logJson });
  mkdirSync(options.dataDir, { recursive: true });
  const monitor = createMonitor(
    { id: options.id, cluster: options.config, dataDir: options.dataDir },
    { clock: systemClock, random: new Random(randomInt(0, 2 ** 32)), logger },
  );
  await monitor.start();
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info('stopping', { signal });
      monitor.stop().then(resolve, (error: unknown) => {
        logger.error('stop failed', { error: String(error) });
        resolve();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
