/**
 * Object GETs for the S3 load generator's GET processes (s3-get-worker.ts) over plain HTTP/1.1 keep-alive sockets
 * read into one fixed buffer per socket (Node's `onread`): the body is counted and dropped, as s3bench-like tools do.
 *
 * Why not Node's HTTP client here: it hands every body chunk over as a fresh Buffer, and under 4 MiB GETs the
 * generator then spent 5.5-6.8 ms of CPU per GET (the chunks' copies, allocations and the full collections they
 * caused; `perf`, 2026-11-25), about as much as the server it measured, on a machine where both share two cores: the
 * comparison measured the generator nearly as much as the servers. Here a GET costs the kernel's copy into the
 * buffer and a little parsing.
 *
 * One request per socket at a time. A response must say its length (Content-Length; S3 object GETs do) and must not
 * be chunked: anything else fails the request with a clear message. https endpoints keep Node's client.
 */
import net from 'node:net';
import { signedHeaders, type RequesterOptions, type Response } from './s3-load.js';

export type RawGetOptions = Pick<RequesterOptions, 'endpoint' | 'accessKey' | 'secretKey' | 'region' | 'payload' | 'requestTimeoutMs'>;

const readBufferBytes = 256 * 1024;
const headerBytesMax = 64 * 1024;
const errorTextMax = 64 * 1024;
const headerEnd = Buffer.from('\r\n\r\n');

/** What a response's header says of the body. Throws on what this client does not read. */
export function parseResponseHead(head: string): { status: number; length: number; close: boolean } {
  const lines = head.split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!status) throw new Error(`not an HTTP/1.x response: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  let length: number | undefined;
  let close = (lines[0] ?? '').startsWith('HTTP/1.0');
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-length') length = Number(value);
    else if (name === 'transfer-encoding' && value.toLowerCase() !== 'identity') throw new Error(`a ${value} response body is not read by this client (Content-Length needed)`);
    else if (name === 'connection') close = value.toLowerCase() === 'close';
  }
  const code = Number(status[1]);
  if (length === undefined) {
    if (code === 204 || code === 304 || (code >= 100 && code < 200)) length = 0;
    else throw new Error(`HTTP ${code} response without Content-Length`);
  }
  if (!Number.isSafeInteger(length) || length < 0) throw new Error(`bad Content-Length in HTTP ${code} response`);
  return { status: code, length, close };
}

interface Exchange {
  resolve(response: Response): void;
  reject(error: Error): void;
  head: Buffer[];
  headBytes: number;
  status: number;
  remaining: number;
  received: number;
  close: boolean;
  text: Buffer[];
  textBytes: number;
  inBody: boolean;
}

class Connection {
  readonly socket: net.Socket;
  readonly #buffer = Buffer.allocUnsafe(readBufferBytes);
  #exchange: Exchange | undefined;
  #timeoutMs = 0;
  dead = false;

  constructor(host: string, port: number) {
    this.socket = net.connect({ host, port, noDelay: true, onread: { buffer: this.#buffer, callback: (n: number) => this.#arrived(n) } });
    const fail = (error: Error) => {
      this.dead = true;
      this.#fail(error);
    };
    this.socket.on('error', fail);
    this.socket.on('close', () => fail(new Error('connection closed by the server')));
    this.socket.on('timeout', () => this.socket.destroy(new Error(`no complete answer within ${this.#timeoutMs} ms`)));
  }

  get idle(): boolean {
    return !this.dead && this.#exchange === undefined;
  }

  request(text: string, timeoutMs: number): Promise<Response> {
    return new Promise<Response>((resolve, reject) => {
      this.#exchange = { resolve, reject, head: [], headBytes: 0, status: 0, remaining: 0, received: 0, close: false, text: [], textBytes: 0, inBody: false };
      this.#timeoutMs = timeoutMs;
      this.socket.setTimeout(timeoutMs);
      this.socket.write(text);
    });
  }

  #fail(error: Error): void {
    const exchange = this.#exchange;
    this.#exchange = undefined;
    exchange?.reject(error);
  }

  #arrived(n: number): boolean {
    const exchange = this.#exchange;
    if (!exchange) {
      this.socket.destroy(new Error('bytes from the server with no request outstanding'));
      return false;
    }
    let at = 0;
    if (!exchange.inBody) {
      exchange.head.push(Buffer.from(this.#buffer.subarray(0, n)));
      exchange.headBytes += n;
      const head = exchange.head.length === 1 ? (exchange.head[0] as Buffer) : Buffer.concat(exchange.head);
      const end = head.indexOf(headerEnd);
      if (end < 0) {
        if (exchange.headBytes > headerBytesMax) this.socket.destroy(new Error(`response header over ${headerBytesMax} bytes`));
        return true;
      }
      try {
        const parsed = parseResponseHead(head.subarray(0, end).toString('latin1'));
        exchange.status = parsed.status;
        exchange.remaining = parsed.length;
        exchange.close = parsed.close;
      } catch (error) {
        this.socket.destroy(error as Error);
        return false;
      }
      exchange.inBody = true;
      // Body bytes that came with the header: they are at the end of this read.
      at = n - (head.length - end - headerEnd.length);
    }
    const bytes = n - at;
    if (bytes > exchange.remaining) {
      this.socket.destroy(new Error(`${bytes - exchange.remaining} bytes past the response's Content-Length`));
      return false;
    }
    if ((exchange.status < 200 || exchange.status >= 300) && exchange.textBytes < errorTextMax) {
      exchange.text.push(Buffer.from(this.#buffer.subarray(at, n)));
      exchange.textBytes += bytes;
    }
    exchange.remaining -= bytes;
    exchange.received += bytes;
    if (exchange.remaining === 0) {
      this.#exchange = undefined;
      this.socket.setTimeout(0);
      if (exchange.close) {
        this.dead = true;
        this.socket.end();
      }
      exchange.resolve({ status: exchange.status, length: exchange.received, text: exchange.textBytes > 0 ? Buffer.concat(exchange.text).toString('utf8') : '' });
    }
    return true;
  }
}

/** Signed GETs over a pool of keep-alive sockets, one request on each at a time. */
export class RawGetter {
  readonly #options: RawGetOptions;
  readonly #url: URL;
  #connections: Connection[] = [];

  constructor(options: RawGetOptions) {
    const url = new URL(options.endpoint);
    if (url.protocol !== 'http:') throw new TypeError(`RawGetter speaks plain http only, not ${url.protocol}`);
    this.#options = options;
    this.#url = url;
  }

  async get(path: string, query = ''): Promise<Response> {
    // The host header as S3Requester sends it (`url.host`: no default port, IPv6 in brackets).
    const signed = signedHeaders(this.#options, 'GET', path, query, { host: this.#url.host });
    let text = `GET ${query ? `${path}?${query}` : path} HTTP/1.1\r\n`;
    for (const [name, value] of Object.entries(signed)) text += `${name}: ${value}\r\n`;
    text += '\r\n';
    this.#connections = this.#connections.filter((c) => !c.dead);
    let connection = this.#connections.find((c) => c.idle);
    if (!connection) {
      // net.connect wants an IPv6 address without the URL's brackets.
      connection = new Connection(this.#url.hostname.replace(/^\[(.*)\]$/, '$1'), Number(this.#url.port || 80));
      this.#connections.push(connection);
    }
    return connection.request(text, this.#options.requestTimeoutMs ?? 60_000);
  }

  close(): void {
    for (const c of this.#connections) c.socket.destroy();
    this.#connections = [];
  }
}
