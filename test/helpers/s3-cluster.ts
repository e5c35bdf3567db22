/**
 * `shoal up` with the S3 gateway for end-to-end tests: 1 monitor, N OSDs and the gateway as one child process of the
 * test (tracked by pid, stopped with SIGTERM, which stops its daemons), the admin keys read from `<dir>/s3-admin.json`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { request as httpRequest, type ClientRequest } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { signRequest, type SignedRequest } from '../../gateway/s3/sigv4.js';
import { cliPath, freePort, removeDir, tempDir, waitFor, writeClusterConfig } from './processes.js';

export interface S3Cluster {
  dir: string;
  port: number;
  endpoint: string;
  keys: { accessKey: string; secretKey: string };
  /** What `shoal up` printed so far. */
  output(): string;
  /** The gateway's pid from `<dir>/s3.pid` (undefined while it is down). */
  gatewayPid(): number | undefined;
  /** Stops `shoal up` (and so every daemon); removes the directory unless the test run failed. */
  stop(): Promise<void>;
}

export async function startS3Cluster(prefix: string, options: { osds?: number; restart?: boolean } = {}): Promise<S3Cluster> {
  const dir = tempDir(prefix);
  // A config with free monitor ports first: `shoal up` would otherwise use the default 7400, and clusters of tests
  // running side by side would join each other's monitors.
  await writeClusterConfig(dir, ['a'], { tickMs: 50, osdHeartbeatIntervalMs: 300, osdGraceMs: 2500, commandTimeoutMs: 5000, monitorCallTimeoutMs: 2000 });
  const port = await freePort();
  const args = ['up', '--dir', dir, '--osds', String(options.osds ?? 3), '--osd-port', '0', '--no-nbd', '--s3-port', String(port)];
  if (options.restart) args.push('--restart');
  const up: ChildProcess = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  up.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  up.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => up.once('exit', () => resolve()));
  const stop = async () => {
    if (up.exitCode === null && up.signalCode === null) {
      up.kill('SIGTERM');
      await exited;
    }
    if (process.exitCode === undefined || process.exitCode === 0) removeDir(dir);
    else process.stderr.write(`cluster files kept in ${dir}\n`);
  };
  try {
    const state = await waitFor('shoal up with S3 to start', 90_000, () => (up.exitCode !== null ? 'exited' : output.includes('is up') ? 'up' : undefined));
    if (state === 'exited') throw new Error(`shoal up exited:\n${output}`);
    if (!/access key \S+ +secret key \S+/.test(output)) throw new Error(`shoal up did not print the admin keys:\n${output}`);
  } catch (error) {
    await stop();
    throw error;
  }
  const keys = JSON.parse(readFileSync(join(dir, 's3-admin.json'), 'utf8')) as { accessKey: string; secretKey: string };
  return {
    dir,
    port,
    endpoint: `http://127.0.0.1:${port}`,
    keys,
    output: () => output,
    gatewayPid: () => {
      const file = join(dir, 's3.pid');
      if (!existsSync(file)) return undefined;
      const pid = Number(readFileSync(file, 'utf8'));
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    },
    stop,
  };
}

export interface S3Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** The `<Code>` of an XML error body ('' when there is none). */
  code: string;
}

export interface SignedRequestInput {
  method: string;
  /** Path as sent (already URI-encoded), e.g. `/bucket/key`. */
  path: string;
  query?: string;
  /** Extra headers, all signed (`host` is added). */
  headers?: Record<string, string>;
  /** The whole body (its length becomes Content-Length unless `headers` has one). */
  body?: Buffer;
  /** x-amz-content-sha256 (default: the sha256 of `body`). */
  payloadHash?: string;
}

export function errorCode(body: Buffer | string): string {
  return /<Code>([^<]*)<\/Code>/.exec(body.toString())?.[1] ?? '';
}

/** Signs a request for the cluster's admin key (SigV4, Authorization header) without sending it. */
export function signFor(cluster: Pick<S3Cluster, 'port' | 'keys'>, input: SignedRequestInput): SignedRequest {
  const headers: Record<string, string> = { host: `127.0.0.1:${cluster.port}`, ...(input.headers ?? {}) };
  if (input.body && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length')) headers['content-length'] = String(input.body.length);
  return signRequest({
    ...cluster.keys,
    region: 'us-east-1',
    method: input.method,
    path: input.path,
    ...(input.query !== undefined ? { query: input.query } : {}),
    headers,
    nowMs: Date.now(),
    ...(input.payloadHash !== undefined ? { payloadHash: input.payloadHash } : {}),
    ...(input.body ? { body: input.body } : {}),
  });
}

/** Starts a signed request on a fresh connection; `write` sends the body (default: `input.body`, then end). */
export function openSigned(cluster: Pick<S3Cluster, 'port' | 'keys'>, input: SignedRequestInput): { request: ClientRequest; reply: Promise<S3Reply>; signed: SignedRequest } {
  const signed = signFor(cluster, input);
  const path = input.query ? `${input.path}?${input.query}` : input.path;
  const request = httpRequest({ host: '127.0.0.1', port: cluster.port, method: input.method, path, headers: signed.headers, agent: false });
  const reply = new Promise<S3Reply>((resolve, reject) => {
    request.on('error', reject);
    request.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, code: errorCode(body) });
      });
    });
  });
  return { request, reply, signed };
}

/** One signed request with the whole body; resolves with the answer. */
export async function signedRequest(cluster: Pick<S3Cluster, 'port' | 'keys'>, input: SignedRequestInput): Promise<S3Reply> {
  const { request, reply } = openSigned(cluster, input);
  request.end(input.body);
  return reply;
}

/**
 * Writes raw bytes to a new TCP connection and collects what comes back until the server closes it (or `waitMs`
 * passes: then the socket is destroyed and `timedOut` is set). `status` is parsed from the first response line.
 */
export async function rawExchange(port: number, bytes: Buffer | string, waitMs = 30_000): Promise<{ status: number | undefined; text: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, waitMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {}); // a reset is one way of refusing
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1];
      resolve({ status: status === undefined ? undefined : Number(status), text, timedOut });
    });
    socket.on('connect', () => socket.write(bytes));
  });
}
