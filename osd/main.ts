/**
 * The OSD daemon (`shoal osd --id N --conf FILE --data DIR`): opens the LevelDB + file store in DIR, wires the real
 * clock and logger into createOsd, and stops cleanly on SIGTERM/SIGINT.
 */
import { hostname } from 'node:os';
import { createLogger, systemClock, tuneGcForBulkData, type ClusterConfig, type LogLevel } from '../src/index.js';
import { createOsd } from './osd.js';
import { LevelStore } from './store/index.js';

/** The largest object an OSD accepts (the messenger's payload bound is the same). */
export const objectBytesMax = 128 * 1024 * 1024;

export interface OsdDaemonOptions {
  id: number;
  config: ClusterConfig;
  dataDir: string;
  listenAddress: string;
  advertiseAddress?: string;
  host?: string;
  crushWeight?: number;
  logLevel: LogLevel;
  logJson: boolean;
}

export async function runOsdDaemon(options: OsdDaemonOptions): Promise<void> {
  tuneGcForBulkData(0);
  const logger = createLogger({ name: `osd.${options.id}`, level: options.logLevel, json: options.logJson });
  // A transaction carries a whole object plus its log entry and metadata, so it may exceed the largest object.
  const store = new LevelStore({
    dir: options.dataDir,
    logger: logger.child({ part: 'store' }),
    limits: { objectBytesMax: objectBytesMax, transactionBytesMax: objectBytesMax + 16 * 1024 * 1024 },
  });
  const osd = createOsd(
    {
      id: options.id,
      cluster: options.config,
      host: options.host ?? hostname().split('.')[0] ?? 'localhost',
      listenAddress: options.listenAddress,
      ...(options.advertiseAddress ? { advertiseAddress: options.advertiseAddress } : {}),
      ...(options.crushWeight ? { crushWeight: options.crushWeight } : {}),
    },
    { store, clock: systemClock, logger },
  );
  await osd.start();
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info('stopping', { signal });
      osd.stop().then(resolve, (error: unknown) => {
        logger.error('stop failed', { error: String(error) });
        resolve();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
