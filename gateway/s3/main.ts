/**
 * The S3 gateway daemon (`shoal s3 --conf FILE --listen HOST:PORT`): an object client, the S3Store over it, the HTTP
 * server and the garbage collector; stops cleanly on SIGTERM/SIGINT.
 */
import { ObjectClient, createLogger, systemClock, gatewayHeapGrowingPercent, tuneGcForBulkData, type ClusterConfig, type LogLevel } from '../../src/index.js';
import { createS3Gateway } from './server.js';
import { S3Store, type S3StoreOptions } from './store.js';

export interface S3DaemonOptions {
  config: ClusterConfig;
  listen: string;
  region: string;
  domain?: string;
  dataPool?: string;
  logLevel: LogLevel;
  logJson: boolean;
  /** Called once the gateway listens (with its address). */
  onListening?: (address: string) => void;
}

const collectEveryMs = 30_000;

export function openS3Store(client: ObjectClient, logLevel: LogLevel, options: Partial<S3StoreOptions> = {}): S3Store {
  return new S3Store(client, { ...options, clock: systemClock, logger: createLogger({ name: 's3.store', level: logLevel }) });
}

export async function runS3Daemon(options: S3DaemonOptions): Promise<void> {
  tuneGcForBulkData(gatewayHeapGrowingPercent);
  const logger = createLogger({ name: 's3', level: options.logLevel, json: options.logJson });
  const client = new ObjectClient(options.config, { clientName: `client.s3.${process.pid}` });
  await client.start();
  const store = new S3Store(client, { clock: systemClock, logger, ...(options.dataPool ? { dataPool: options.dataPool } : {}) });
  await store.ensurePools();
  const gateway = createS3Gateway(
    { listen: options.listen, region: options.region, maxSkewMs: 15 * 60_000, ...(options.domain ? { domain: options.domain } : {}) },
    { store, clock: systemClock, logger },
  );
  await gateway.start();
  logger.info('listening', { address: gateway.address });
  options.onListening?.(gateway.address);
  let collecting = Promise.resolve();
  const timer = setInterval(() => {
    collecting = collecting
      .then(() => store.collectGarbage())
      .then((n) => (n > 0 ? logger.info('garbage collected', { instances: n }) : undefined))
      .catch((error: unknown) => logger.warn('garbage collection failed', { error: String(error) }));
  }, collectEveryMs);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info('stopping', { signal });
      clearInterval(timer);
      gateway
        .stop()
        .then(() => collecting)
        .then(() => client.stop())
        .then(resolve, (error: unknown) => {
          logger.error('stop failed', { error: String(error) });
          resolve();
        });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
