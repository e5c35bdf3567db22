/**
 * The NBD gateway daemon (`shoal nbd --conf FILE --port P`): an object client, the block images over it and the NBD
 * server; stops cleanly on SIGTERM/SIGINT (connections closed, image locks released).
 */
import { hostname } from 'node:os';
import { BlockImages, ObjectClient, createLogger, gatewayHeapGrowingPercent, tuneGcForBulkData, type ClusterConfig, type LogLevel } from '../../src/index.js';
import { ExportRegistry } from './exports.js';
import { createNbdServer } from './server.js';

export interface NbdDaemonOptions {
  config: ClusterConfig;
  host: string;
  port: number;
  /** Take over images whose lock holder's lease expired (a gateway that died). */
  breakDeadLocks: boolean;
  logLevel: LogLevel;
  logJson: boolean;
  /** Stop when the parent process goes away (a gateway run by `shoal up` does not outlive its supervisor). */
  exitWithParent?: boolean;
  onListening?: (address: string) => void;
}

export async function runNbdDaemon(options: NbdDaemonOptions): Promise<void> {
  tuneGcForBulkData(gatewayHeapGrowingPercent);
  const logger = createLogger({ name: 'nbd', level: options.logLevel, json: options.logJson });
  const client = new ObjectClient(options.config, { clientName: `client.nbd.${process.pid}` });
  await client.start();
  // A stable lock owner: a gateway restarted on the same host and port takes its images back at once.
  const owner = `nbd@${hostname()}:${options.port}`;
  const exports = new ExportRegistry(client, new BlockImages(client, logger), owner, options.breakDeadLocks);
  const server = createNbdServer({ host: options.host, port: options.port }, { exports, logger });
  await server.start();
  logger.info('listening', { address: server.address });
  options.onListening?.(server.address);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info('stopping', { signal });
      server
        .stop()
        .then(() => client.stop())
        .then(resolve, (error: unknown) => {
          logger.error('stop failed', { error: String(error) });
          resolve();
        });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    if (options.exitWithParent) {
      const parent = process.ppid;
      const timer = setInterval(() => {
        if (process.ppid === parent) return;
        clearInterval(timer);
        stop('parent exited');
        // With the whole cluster gone, releasing locks could wait for the op timeout: they expire by themselves.
        setTimeout(() => process.exit(0), 5000).unref();
      }, 1000);
      timer.unref();
    }
  });
}
