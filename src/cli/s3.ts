/** `shoal s3`: run the S3 gateway, and manage its users and access keys (kept in the cluster). */
import { Option, type Command } from 'commander';
import { StorageError, isLogLevel, type LogLevel } from '../index.js';
import { openS3Store, runS3Daemon } from '../../gateway/s3/main.js';
import type { S3Store } from '../../gateway/s3/store.js';
import { configFor } from './config.js';
import { withObjects } from './objects.js';

function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

async function withStore<T>(command: Command, fn: (store: S3Store) => Promise<T>): Promise<T> {
  return withObjects(command, async (client) => {
    const store = openS3Store(client, 'error');
    await store.ensurePools();
    return fn(store);
  });
}

export function registerS3Commands(program: Command): void {
  const s3 = program
    .command('s3')
    .description('run the S3 gateway, or manage S3 users and keys (user, key)')
    .option('--port <port>', 'port to listen on (with --host)', '7480')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--region <name>', 'the region clients sign for and buckets report', 'us-east-1')
    .option('--domain <name>', 'virtual-host addressing: <bucket>.<domain>')
    .option('--data-pool <pool>', 'pool for object data (replicated or erasure-coded)')
    .addOption(new Option('--log-level <level>', 'debug, info, warn or error').default('info'))
    .option('--log-json', 'log JSON lines')
    .action(async (o: { port: string; host: string; region: string; domain?: string; dataPool?: string; logLevel: string; logJson?: boolean }, command: Command) => {
      if (!isLogLevel(o.logLevel)) throw new StorageError('INVALID_ARGUMENT', `unknown log level ${o.logLevel}`);
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new StorageError('INVALID_ARGUMENT', `--port must be 0-65535: ${o.port}`);
      const { config } = configFor(command);
      await runS3Daemon({
        config,
        listen: `${o.host}:${port}`,
        region: o.region,
        ...(o.domain ? { domain: o.domain } : {}),
        ...(o.dataPool ? { dataPool: o.dataPool } : {}),
        logLevel: o.logLevel as LogLevel,
        logJson: o.logJson ?? false,
        onListening: (address) => print(`S3 gateway listening on http://${address}`),
      });
    });
  const user = s3.command('user').description('S3 users');
  user.command('create').argument('<name>').option('--json', 'print {"accessKey","secretKey"}')
    .description('create a user and its first access key')
    .action(async (name: string, o: { json?: boolean }, c: Command) => {
      await withStore(c, async (store) => {
        const key = await store.createUser(name);
        print(o.json ? JSON.stringify(key) : `user ${name}\naccess key: ${key.accessKey}\nsecret key: ${key.secretKey}`);
      });
    });
  user.command('ls').option('--json', 'print JSON').description('list users and their access keys')
    .action(async (o: { json?: boolean }, c: Command) => {
      await withStore(c, async (store) => {
        const users = await store.listUsers();
        print(o.json ? JSON.stringify(users) : users.map((u) => `${u.name}  ${u.accessKeys.join(',') || '(no keys)'}`).join('\n') || '(no users)');
      });
    });
  user.command('rm').argument('<name>').description('remove a user (and its keys); it must own no buckets')
    .action(async (name: string, _o: unknown, c: Command) => {
      await withStore(c, async (store) => {
        await store.removeUser(name);
        print(`user ${name} removed`);
      });
    });
  const key = s3.command('key').description('S3 access keys');
  key.command('create').argument('<user>').option('--json', 'print {"accessKey","secretKey"}').description('add an access key to a user')
    .action(async (name: string, o: { json?: boolean }, c: Command) => {
      await withStore(c, async (store) => {
        const k = await store.createKey(name);
        print(o.json ? JSON.stringify(k) : `access key: ${k.accessKey}\nsecret key: ${k.secretKey}`);
      });
    });
  key.command('rm').argument('<access-key>').description('remove an access key')
    .action(async (accessKey: string, _o: unknown, c: Command) => {
      await withStore(c, async (store) => {
        await store.removeKey(accessKey);
        print(`access key ${accessKey} removed`);
      });
    });
}
