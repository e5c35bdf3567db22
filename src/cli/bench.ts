/**
 * `shoal bench s3`: the S3 load generator of benchmarks/lib/s3-load.ts against any S3 endpoint (Shoal's gateway,
 * radosgw, MinIO, AWS): 4 KiB (32 in flight) and 4 MiB (8 in flight) PUT, GET and DELETE, and a full listing of
 * 10,000 keys, in a bucket of its own that it removes at the end.
 */
import type { Command } from 'commander';
import { StorageError } from '../index.js';
import { runS3Load } from '../../benchmarks/lib/s3-load.js';

function print(text: string): void {
  process.stdout.write(text + '\n');
}

export function registerBenchCommands(program: Command): void {
  const bench = program.command('bench').description('measure a service from outside (s3)');
  bench
    .command('s3')
    .description('S3 load against any endpoint: PUT/GET/DELETE of 4 KiB (32 in flight) and 4 MiB (8 in flight), LIST of 10,000 keys')
    .option('--endpoint <url>', 'S3 endpoint, path-style (e.g. http://127.0.0.1:7480)')
    .option('--access-key <key>', 'access key (default $AWS_ACCESS_KEY_ID)')
    .option('--secret-key <key>', 'secret key (default $AWS_SECRET_ACCESS_KEY)')
    .option('--region <name>', 'signing region', 'us-east-1')
    .option('--seconds <n>', 'length of each PUT and GET phase (default $SHOAL_BENCH_SECONDS, then 10)')
    .option('--unsigned-payload', 'sign UNSIGNED-PAYLOAD instead of the body\'s sha256')
    .option('--list-keys <n>', 'keys created and listed in the LIST phase (0 skips it)', '10000')
    .action(async (o: { endpoint?: string; accessKey?: string; secretKey?: string; region: string; seconds?: string; unsignedPayload?: boolean; listKeys: string }) => {
      const accessKey = o.accessKey ?? process.env['AWS_ACCESS_KEY_ID'];
      const secretKey = o.secretKey ?? process.env['AWS_SECRET_ACCESS_KEY'];
      if (!o.endpoint) throw new StorageError('INVALID_ARGUMENT', '--endpoint is required');
      if (!accessKey || !secretKey) throw new StorageError('INVALID_ARGUMENT', '--access-key and --secret-key are required');
      if (!/^https?:\/\/[^/]+\/?$/.test(o.endpoint)) throw new StorageError('INVALID_ARGUMENT', `--endpoint must be http(s)://host[:port]: ${o.endpoint}`);
      const secondsText = o.seconds ?? process.env['SHOAL_BENCH_SECONDS'] ?? '10';
      const seconds = Number(secondsText);
      if (!Number.isFinite(seconds) || seconds <= 0) throw new StorageError('INVALID_ARGUMENT', `--seconds must be a positive number: ${secondsText}`);
      const listKeys = Number(o.listKeys);
      if (!Number.isSafeInteger(listKeys) || listKeys < 0) throw new StorageError('INVALID_ARGUMENT', `--list-keys must be a whole number >= 0: ${o.listKeys}`);
      print(`S3 load on ${o.endpoint} (region ${o.region}, ${o.unsignedPayload ? 'UNSIGNED-PAYLOAD' : 'sha256 payloads'}); ${seconds} s per PUT and GET phase`);
      const report = await runS3Load({ endpoint: o.endpoint, accessKey, secretKey, region: o.region, seconds, payload: o.unsignedPayload ? 'unsigned' : 'sha256', listKeys, print });
      if (report.errors > 0) throw new StorageError('UNAVAILABLE', `${report.errors} requests failed (see the lines marked ERRORS)`);
      if (report.cleanupErrors.length > 0) throw new StorageError('UNAVAILABLE', `bucket ${report.bucket} was not fully removed`);
    });
}
