/**
 * A generic S3 load generator for any S3 endpoint (behind `shoal bench s3` and `npm run bench -- s3`). It signs its
 * own requests (SigV4 via `signRequest`; payload hash = the body's sha256, computed once per body, or
 * `UNSIGNED-PAYLOAD`), speaks HTTP/1.1 with a keep-alive agent of exactly as many sockets as requests in flight, and
 * addresses buckets path-style. GET phases run in child processes (`getProcesses`, s3-get-worker.ts): one thread
 * reading 4 MiB bodies saturated its core before the gateway did; over plain http they read bodies into fixed
 * buffers and drop them (s3-raw-get.ts). Phases, each a closed loop with a fixed number in flight:
 * - 4 KiB objects, 32 in flight: PUT (new keys, for `seconds`), GET (whole object, read fully, for `seconds`),
 *   DELETE (every key the PUT phase wrote);
 * - 4 MiB objects, 8 in flight: the same;
 * - LIST: 10,000 empty keys are created (32 in flight), then listed whole with ListObjectsV2 (pages of 1000) three
 *   times; the median time is the figure.
 * Every response status is checked: a wrong status (or a short body, a wrong key count) is an error of its phase,
 * counted and shown with the first error's status and S3 error code. It works in a bucket of its own (unique name)
 * and removes all it wrote at the end, errors or not.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { signRequest, uriEncode, unsignedPayload } from '../../gateway/s3/sigv4.js';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startCpuMeter } from './cpu.js';
import { closedLoop, describe, percentile, warmupSeconds, type LoadResult } from './stats.js';

export interface S3LoadOptions {
  /** `http://host:port` (or https); path-style addressing. */
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region: string;
  /** Length of each timed PUT and GET phase. */
  seconds: number;
  /** `sha256` (default): sign the body's sha256, which the server must check; `unsigned`: `UNSIGNED-PAYLOAD`. */
  payload?: 'sha256' | 'unsigned';
  /** Keys for the LIST phase (default 10,000; 0 skips the phase, e.g. to compare PUT/GET rates quickly). */
  listKeys?: number;
  /** Where each result line goes (default stdout). */
  print?: (line: string) => void;
  /** Per-request time limit (default 60 s): a request that hangs becomes an error instead of stalling the phase. */
  requestTimeoutMs?: number;
  /**
   * Child processes the GET phases' requests are spread over (default 2). One thread reading 4 MiB bodies saturated
   * its core at 8 in flight before the gateway did (85-87 % of a core, measured 2026-11-24), so the figure measured
   * the generator; processes rather than threads so that they can start with their own allocator settings.
   */
  getProcesses?: number;
}

/** What a request needs of the options (no functions: a GET process gets a copy). */
export type RequesterOptions = Omit<S3LoadOptions, 'print'>;

/** A GET process's share of a phase (s3-get-worker.ts). */
export interface GetWorkerJob {
  options: RequesterOptions;
  bucket: string;
  keys: string[];
  bytes: number;
  inFlight: number;
  seconds: number;
  warm: boolean;
  /** Where in `keys` the process starts, so the processes do not read the same keys in step. */
  offset: number;
}

export type GetWorkerResult = Omit<LoadResult, 'cpu'> & { firstError?: string; /** CPU the process used in its timed part. */ cpuMicros: number };

export interface S3PhaseResult extends LoadResult {
  /** `PUT 4 KiB c32`, `GET 4 MiB c8`, ... */
  name: string;
  /** The first failure, for the report: status, S3 error code and message. */
  firstError?: string;
  /** CPU the load generator itself used during the phase (100 = one core). */
  clientCpuPercent: number;
}

export interface S3LoadReport {
  bucket: string;
  phases: S3PhaseResult[];
  /** Median seconds to list every key of the LIST phase, and how many keys each listing returned. */
  list?: { keys: number; seconds: number[]; medianSeconds: number; errors: number; firstError?: string };
  /** Problems while removing what the run wrote (empty when all is gone). */
  cleanupErrors: string[];
  /** Total errors over all phases (including the LIST phase). */
  errors: number;
}

export const s3LoadPhases = [
  { label: '4 KiB', bytes: 4096, inFlight: 32 },
  { label: '4 MiB', bytes: 4 * 1024 * 1024, inFlight: 8 },
] as const;

const listInFlight = 32;
const listRepeats = 3;

export interface Response {
  status: number;
  /** Bytes of the body (read fully); `text`: the whole body when asked for, the first 64 KiB of a failure's. */
  length: number;
  text: string;
}

/** What signing a request needs of the options. */
export type SigningOptions = Pick<RequesterOptions, 'accessKey' | 'secretKey' | 'region' | 'payload'>;

/**
 * `headers` (with `host`) plus the SigV4 ones for a request with `body` (none: empty); `payloadHash` saves hashing the
 * same body again. Shared by S3Requester and the GET processes' RawGetter (s3-raw-get.ts).
 */
export function signedHeaders(options: SigningOptions, method: string, path: string, query: string, headers: Record<string, string>, body?: Uint8Array, payloadHash?: string): Record<string, string> {
  const hash = options.payload === 'unsigned' ? unsignedPayload : (payloadHash ?? sha256Hex(body ?? new Uint8Array(0)));
  return signRequest({ method, path, query, headers, nowMs: Date.now(), payloadHash: hash, accessKey: options.accessKey, secretKey: options.secretKey, region: options.region }).headers;
}

/** A failed request: what the report shows. */
class RequestFailure extends Error {}

/** A signed S3 client of just the calls the load needs, on one keep-alive agent. */
export class S3Requester {
  readonly #url: URL;
  readonly #agent: HttpAgent;
  readonly #options: RequesterOptions;

  constructor(options: RequesterOptions, maxSockets: number) {
    this.#options = options;
    this.#url = new URL(options.endpoint);
    if (this.#url.protocol !== 'http:' && this.#url.protocol !== 'https:') throw new TypeError(`endpoint must be http(s)://: ${options.endpoint}`);
    const Agent = this.#url.protocol === 'https:' ? HttpsAgent : HttpAgent;
    this.#agent = new Agent({ keepAlive: true, maxSockets });
  }

  close(): void {
    this.#agent.destroy();
  }

  /** Sends one signed request; `payloadHash` saves hashing the same body again. Resolves with any status. */
  async send(method: string, path: string, query: string, body: Uint8Array | undefined, options: { payloadHash?: string; headers?: Record<string, string>; wantText?: boolean } = {}): Promise<Response> {
    const headers: Record<string, string> = { host: this.#url.host, ...options.headers };
    if (body) headers['content-length'] = String(body.length);
    const signed = signedHeaders(this.#options, method, path, query, headers, body, options.payloadHash);
    const requestFn = this.#url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<Response>((resolve, reject) => {
      const req = requestFn(
        { protocol: this.#url.protocol, hostname: this.#url.hostname, port: this.#url.port, method, path: query ? `${path}?${query}` : path, headers: signed, agent: this.#agent },
        (res: IncomingMessage) => {
          const status = res.statusCode ?? 0;
          const wanted = options.wantText === true;
          const keep = wanted || status < 200 || status >= 300;
          const chunks: Buffer[] = [];
          let length = 0;
          res.on('data', (chunk: Buffer) => {
            // A body asked for (a listing page) is kept whole; an error body only for its first 64 KiB.
            if (wanted || (keep && length < 65_536)) chunks.push(chunk);
            length += chunk.length;
          });
          res.once('end', () => resolve({ status, length, text: keep ? Buffer.concat(chunks).toString('utf8') : '' }));
          res.once('error', reject);
        },
      );
      req.setTimeout(this.#options.requestTimeoutMs ?? 60_000, () => req.destroy(new RequestFailure(`${method} ${path}: no answer within ${this.#options.requestTimeoutMs ?? 60_000} ms`)));
      req.once('error', reject);
      req.end(body);
    });
  }

  /** `send`, then fails unless the status is one of `ok`. */
  async expect(ok: number[], method: string, path: string, query: string, body?: Uint8Array, options: Parameters<S3Requester['send']>[4] = {}): Promise<Response> {
    const response = await this.send(method, path, query, body, options);
    if (!ok.includes(response.status)) throw new RequestFailure(`${method} ${path}${query ? `?${query}` : ''}: HTTP ${response.status}${s3ErrorSummary(response.text)}`);
    return response;
  }
}

function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** ` Code: Message` of an S3 XML error body (or the body's start when it is not one). */
function s3ErrorSummary(text: string): string {
  if (text === '') return '';
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1];
  return code ? ` ${code}${message ? `: ${message}` : ''}` : ` ${text.slice(0, 200).replace(/\s+/g, ' ')}`;
}

function objectPath(bucket: string, key: string): string {
  return `/${bucket}/${uriEncode(key, false)}`;
}

/** Runs `op` in a closed loop (after a warm-up of the same load when `warm`) and remembers the first failure's message. */
async function phase(name: string, inFlight: number, limits: { count?: number; seconds?: number }, op: (i: number) => Promise<number>, warm = false): Promise<S3PhaseResult> {
  if (warm && warmupSeconds > 0) await closedLoop(inFlight, { seconds: warmupSeconds }, op);
  const cpu = process.cpuUsage();
  const failures = firstFailure(op);
  const result = await closedLoop(inFlight, limits, failures.op);
  const used = process.cpuUsage(cpu);
  const clientCpuPercent = ((used.user + used.system) / 1e6 / result.seconds) * 100;
  return { ...result, name, clientCpuPercent, ...(failures.first === undefined ? {} : { firstError: failures.first }) };
}

/** `op`, remembering the message of its first failure in `first`. */
export function firstFailure(op: (i: number) => Promise<number>): { op: (i: number) => Promise<number>; first: string | undefined } {
  const out = {
    first: undefined as string | undefined,
    op: async (i: number) => {
      try {
        return await op(i);
      } catch (error) {
        out.first ??= errorText(error);
        throw error;
      }
    },
  };
  return out;
}

function requesterOptions(options: S3LoadOptions): RequesterOptions {
  const { print: _print, ...rest } = options;
  return rest;
}

/** One signed whole-object GET (S3Requester.send, or RawGetter.get in the GET processes), any status. */
export type ObjectGet = (path: string) => Promise<Response>;

/** Op `i` of a GET phase: the whole object of key `i + job.offset` (modulo the keys), its status and length checked. */
export function getOp(get: ObjectGet, job: GetWorkerJob): (i: number) => Promise<number> {
  return async (i) => {
    const path = objectPath(job.bucket, job.keys[(i + job.offset) % Math.max(1, job.keys.length)] ?? '');
    const response = await get(path);
    if (response.status !== 200) throw new RequestFailure(`GET ${path}: HTTP ${response.status}${s3ErrorSummary(response.text)}`);
    if (response.length !== job.bytes) throw new RequestFailure(`GET ${path}: ${response.length} bytes, expected ${job.bytes}`);
    return response.length;
  };
}

/**
 * glibc settings for the GET processes (s3-get-worker.ts): keep up to 64 MiB of freed memory instead of handing it
 * back to the kernel at once, and take buffers of up to 32 MiB from the heap rather than from fresh mappings. A
 * variable already set in the environment wins.
 */
const getProcessMalloc = { MALLOC_TRIM_THRESHOLD_: '67108864', MALLOC_TOP_PAD_: '16777216', MALLOC_MMAP_THRESHOLD_: '33554432' };

interface GetProcess {
  pid: number;
  /** Settles once its warm-up is done (or rejects when it exits first). */
  warm: Promise<void>;
  result: Promise<GetWorkerResult>;
  go(): void;
  stop(): void;
}

function startGetProcess(job: GetWorkerJob): GetProcess {
  const child = fork(fileURLToPath(new URL('./s3-get-worker.js', import.meta.url)), [], { env: { ...getProcessMalloc, ...process.env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
  const exited = new Promise<never>((_, reject) => {
    child.once('exit', (code, signal) => reject(new Error(`GET process ${child.pid} exited (${signal ?? code}) before its result`)));
    child.once('error', reject);
  });
  let warmed!: () => void;
  let finished!: (result: GetWorkerResult) => void;
  const warm = new Promise<void>((resolve) => (warmed = resolve));
  const result = new Promise<GetWorkerResult>((resolve) => (finished = resolve));
  child.on('message', (message: unknown) => {
    if (message === 'ready') child.send(job);
    else if (message === 'warm') warmed();
    else finished(message as GetWorkerResult);
  });
  const settled = <T>(p: Promise<T>): Promise<T> => Promise.race([p, exited]);
  return { pid: child.pid ?? 0, warm: settled(warm), result: settled(result), go: () => child.send('go'), stop: () => child.kill() };
}

/**
 * A GET phase: whole-object GETs of `job.keys`, `job.inFlight` at once, spread over `processes` child processes
 * (s3-get-worker.ts), each with its share in flight; results merged into one. The processes warm up on their own and
 * start their timed parts together; their CPU counts as the generator's (`clientCpuPercent`, the `bench` group).
 */
async function getPhase(name: string, job: GetWorkerJob, processes: number): Promise<S3PhaseResult> {
  const count = Math.max(1, Math.min(processes, job.inFlight));
  const shares = Array.from({ length: count }, (_, t) => Math.floor(job.inFlight / count) + (t < job.inFlight % count ? 1 : 0));
  const children = shares.map((share, t) => startGetProcess({ ...job, inFlight: share, offset: Math.floor((t * job.keys.length) / count) }));
  // Observed below; until then a failing process must not count as an unhandled rejection.
  for (const c of children) {
    c.warm.catch(() => {});
    c.result.catch(() => {});
  }
  try {
    await Promise.all(children.map((c) => c.warm));
    const meter = startCpuMeter(children.map((c) => c.pid));
    const cpu = process.cpuUsage();
    for (const c of children) c.go();
    const results = await Promise.all(children.map((c) => c.result));
    const used = process.cpuUsage(cpu);
    const latenciesMs = results.flatMap((r) => r.latenciesMs).sort((a, b) => a - b);
    const seconds = Math.max(...results.map((r) => r.seconds));
    const use = meter.stop(latenciesMs.length);
    const firstError = results.find((r) => r.firstError !== undefined)?.firstError;
    const clientMicros = used.user + used.system + results.reduce((sum, r) => sum + r.cpuMicros, 0);
    return {
      name,
      ops: latenciesMs.length,
      bytes: results.reduce((sum, r) => sum + r.bytes, 0),
      seconds,
      latenciesMs,
      errors: results.reduce((sum, r) => sum + r.errors, 0),
      clientCpuPercent: (clientMicros / 1e6 / seconds) * 100,
      ...(use ? { cpu: use } : {}),
      ...(firstError === undefined ? {} : { firstError }),
    };
  } finally {
    for (const c of children) c.stop();
  }
}

function phaseLine(r: S3PhaseResult): string {
  const line = `${describe(r.name, r)}  client cpu ${r.clientCpuPercent.toFixed(0)}%`;
  return r.errors === 0 ? line : `${line}  << ${r.errors} ERRORS; first: ${r.firstError ?? '?'}`;
}

/** Every key of the bucket under `prefix` (ListObjectsV2, pages of 1000). */
async function listAll(s3: S3Requester, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const query = `${token === undefined ? '' : `continuation-token=${uriEncode(token)}&`}list-type=2&max-keys=1000&prefix=${uriEncode(prefix)}`;
    const response = await s3.expect([200], 'GET', `/${bucket}`, query, undefined, { wantText: true });
    for (const m of response.text.matchAll(/<Key>([^<]*)<\/Key>/g)) keys.push(unescapeXml(m[1] ?? ''));
    const truncated = /<IsTruncated>true<\/IsTruncated>/.test(response.text);
    token = truncated ? unescapeXml(/<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(response.text)?.[1] ?? '') : undefined;
    if (truncated && !token) throw new RequestFailure(`GET /${bucket}?${query}: truncated listing without NextContinuationToken`);
  } while (token !== undefined);
  return keys;
}

function unescapeXml(text: string): string {
  return text.replace(/&(lt|gt|quot|apos|amp|#x[0-9a-fA-F]+|#[0-9]+);/g, (_, e: string) =>
    e === 'lt' ? '<' : e === 'gt' ? '>' : e === 'quot' ? '"' : e === 'apos' ? "'" : e === 'amp' ? '&' : String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10)),
  );
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Deletes keys with DeleteObjects, 1000 at a time; returns the problems met. */
async function deleteKeys(s3: S3Requester, bucket: string, keys: string[]): Promise<string[]> {
  const problems: string[] = [];
  for (let start = 0; start < keys.length; start += 1000) {
    const body = Buffer.from(`<Delete><Quiet>true</Quiet>${keys.slice(start, start + 1000).map((k) => `<Object><Key>${escapeXml(k)}</Key></Object>`).join('')}</Delete>`);
    try {
      const response = await s3.expect([200], 'POST', `/${bucket}`, 'delete=', body, { wantText: true, headers: { 'content-md5': createHash('md5').update(body).digest('base64'), 'content-type': 'application/xml' } });
      const failed = [...response.text.matchAll(/<Error>[\s\S]*?<\/Error>/g)];
      if (failed.length > 0) problems.push(`DeleteObjects: ${failed.length} keys not deleted; first:${s3ErrorSummary(failed[0]?.[0] ?? '')}`);
    } catch (error) {
      problems.push(errorText(error));
    }
  }
  return problems;
}

/**
 * Removes what the run wrote: the keys it may have left (every PUT sent and not deleted since), then whatever a
 * listing still shows, then the bucket. Returns the problems met.
 */
async function removeBucket(s3: S3Requester, bucket: string, leftKeys: Iterable<string>): Promise<string[]> {
  const problems = await deleteKeys(s3, bucket, [...leftKeys]);
  try {
    problems.push(...(await deleteKeys(s3, bucket, await listAll(s3, bucket, ''))));
  } catch (error) {
    problems.push(`listing the bucket for leftovers: ${errorText(error)}`);
  }
  try {
    await s3.expect([204, 200], 'DELETE', `/${bucket}`, '');
  } catch (error) {
    problems.push(errorText(error));
  }
  return problems;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Runs every phase against `options.endpoint`, printing one line per phase; see the module comment. */
export async function runS3Load(options: S3LoadOptions): Promise<S3LoadReport> {
  const print = options.print ?? ((line: string) => process.stdout.write(line + '\n'));
  const bucket = `shoal-bench-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const prefix = 'bench/';
  const admin = new S3Requester(options, 4);
  await admin.expect([200], 'PUT', `/${bucket}`, '');
  const report: S3LoadReport = { bucket, phases: [], cleanupErrors: [], errors: 0 };
  /** Keys a PUT was sent for and no DELETE has removed since: what the cleanup removes. */
  const leftKeys = new Set<string>();
  try {
    for (const { label, bytes, inFlight } of s3LoadPhases) {
      const s3 = new S3Requester(options, inFlight);
      try {
        const body = randomBytes(bytes);
        const payloadHash = sha256Hex(body);
        const key = (i: number) => `${prefix}${label.replace(' ', '')}/obj-${i}`;
        const written: number[] = [];
        const isWritten = new Set<number>();
        // Warmed up (PUT and GET; the warm-up PUTs write the same keys again, so DELETE still meets each key once).
        const put = await phase(`PUT ${label} c${inFlight}`, inFlight, { seconds: options.seconds }, async (i) => {
          leftKeys.add(key(i));
          await s3.expect([200], 'PUT', objectPath(bucket, key(i)), '', body, { payloadHash });
          if (!isWritten.has(i)) written.push(i);
          isWritten.add(i);
          return bytes;
        }, true);
        print(phaseLine(put));
        const keys = written.map((n) => key(n));
        const get = await getPhase(`GET ${label} c${inFlight}`, { options: requesterOptions(options), bucket, keys, bytes, inFlight, seconds: options.seconds, warm: true, offset: 0 }, options.getProcesses ?? 2);
        print(phaseLine(get));
        const del = await phase(`DELETE ${label} c${inFlight}`, inFlight, { count: written.length }, async (i) => {
          const k = key(written[i] as number);
          await s3.expect([204, 200], 'DELETE', objectPath(bucket, k), '');
          leftKeys.delete(k);
          return 0;
        });
        print(phaseLine(del));
        report.phases.push(put, get, del);
      } finally {
        s3.close();
      }
    }
    if (options.listKeys !== 0) report.list = await listPhase(options, bucket, `${prefix}list/`, print, leftKeys);
  } finally {
    report.cleanupErrors = await removeBucket(admin, bucket, leftKeys);
    admin.close();
    if (report.cleanupErrors.length > 0) print(`cleanup of bucket ${bucket} FAILED: ${report.cleanupErrors.join('; ')}`);
  }
  report.errors = report.phases.reduce((sum, p) => sum + p.errors, 0) + (report.list?.errors ?? 0);
  return report;
}

async function listPhase(options: S3LoadOptions, bucket: string, prefix: string, print: (line: string) => void, leftKeys: Set<string>): Promise<S3LoadReport['list']> {
  const listKeys = options.listKeys ?? 10_000;
  const s3 = new S3Requester(options, listInFlight);
  try {
    const empty = new Uint8Array(0);
    const payloadHash = sha256Hex(empty);
    const create = await phase(`PUT 0 B c${listInFlight} (list keys)`, listInFlight, { count: listKeys }, async (i) => {
      const key = `${prefix}k-${String(i).padStart(8, '0')}`;
      leftKeys.add(key);
      await s3.expect([200], 'PUT', objectPath(bucket, key), '', empty, { payloadHash });
      return 0;
    });
    print(phaseLine(create));
    const seconds: number[] = [];
    let keys = 0;
    let errors = create.errors;
    let firstError = create.firstError;
    for (let repeat = 0; repeat < listRepeats; repeat++) {
      const started = performance.now();
      try {
        keys = (await listAll(s3, bucket, prefix)).length;
        seconds.push((performance.now() - started) / 1000);
        if (keys !== create.ops) throw new RequestFailure(`listing returned ${keys} keys, ${create.ops} were written`);
      } catch (error) {
        errors++;
        firstError ??= errorText(error);
      }
    }
    const sorted = [...seconds].sort((a, b) => a - b);
    const medianSeconds = percentile(sorted, 50);
    const pages = Math.max(1, Math.ceil(keys / 1000));
    const line =
      sorted.length === 0
        ? `${`LIST ${listKeys.toLocaleString('en-US')} keys`.padEnd(28)}      n/a (no listing succeeded)`
        : `${`LIST ${keys.toLocaleString('en-US')} keys`.padEnd(28)} ${medianSeconds.toFixed(2).padStart(8)} s to list all (median of ${sorted.length}: ${sorted.map((s) => s.toFixed(2)).join(' / ')} s; ${pages} pages of 1000)`;
    print(errors === 0 ? line : `${line}  << ${errors} ERRORS; first: ${firstError ?? '?'}`);
    return { keys, seconds, medianSeconds, errors, ...(firstError === undefined ? {} : { firstError }) };
  } finally {
    s3.close();
  }
}
