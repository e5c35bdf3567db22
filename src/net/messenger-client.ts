/**
 * The client end of the data-plane messenger: one connection per server address, many requests in flight on it,
 * matched to their responses by id. The connection is opened on demand (first request, or the first one after a
 * loss) and closed after `idleTimeoutMs` with nothing in flight.
 *
 * Bounds and backpressure: at most `inflightRequestsMax` requests are on the wire per connection, and none is sent
 * while the socket's write buffer is over its high-water mark; the rest wait in a FIFO queue of at most
 * `queuedRequestsMax`, past which `request` fails at once with BUSY. Queued requests have not been sent, so they
 * survive a connection loss and go out on the next connection.
 *
 * Errors: the server's StorageError comes back with its code; no reply within `timeoutMs` (queueing and connecting
 * included) is TIMEOUT; a connection lost with requests on the wire fails each of them with UNAVAILABLE (the server
 * may or may not have acted on them); a failed connect or handshake fails the queued ones with UNAVAILABLE (or the
 * handshake's own error, e.g. AUTH_FAILED).
 */
import * as net from 'node:net';
import {
  StorageError,
  bufferPool,
  silentLogger,
  systemClock,
  type Clock,
  type Logger,
  type TimerHandle,
} from '../common/index.js';
import type { FrameKind } from '../protocol/index.js';
import { FrameParser, FrameWriter, type FrameLimits, type ParsedFrame } from './messenger-frame.js';
import { connectReading } from './socket-reader.js';
import {
  errorFromFields,
  messengerDefaults,
  parseAddress,
  type ClientHandshake,
  type MessengerReply,
  type RequestOptions,
} from './messenger-types.js';

export interface MessengerClientOptions {
  /** host:port of the server. */
  address: string;
  logger?: Logger;
  clock?: Clock;
  headerBytesMax?: number;
  payloadBytesMax?: number;
  /** Requests on the wire at once; more wait in the queue. */
  inflightRequestsMax?: number;
  /** Requests waiting to be sent; past it `request` fails with BUSY. */
  queuedRequestsMax?: number;
  /** Bounds connecting plus the handshake. */
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  /** Run on every new connection before any request is sent; see ClientHandshake. */
  handshake?: ClientHandshake;
}

export interface MessengerClientStats {
  connected: boolean;
  inflightRequests: number;
  queuedRequests: number;
  /** Request bytes queued in the socket, not yet taken by the kernel. */
  bufferedWriteBytes: number;
  /** Connections opened so far (the first one included). */
  connects: number;
}

interface Settings extends FrameLimits {
  inflightRequestsMax: number;
  queuedRequestsMax: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
}

/** One request (or one-way message, or handshake step) from the call until it settles. */
interface Call {
  readonly kind: FrameKind;
  readonly op: string;
  readonly header: Uint8Array;
  readonly payload: Uint8Array | undefined;
  readonly resolve: (reply: MessengerReply) => void;
  readonly reject: (error: StorageError) => void;
  timer: TimerHandle | undefined;
  /** The connection it went out on; undefined while queued. */
  connection: ClientConnection | undefined;
  id: number;
  settled: boolean;
}

const noBytes = new Uint8Array(0);
const emptyReply: MessengerReply = { header: noBytes, payload: Buffer.alloc(0) };

function settle(call: Call): boolean {
  if (call.settled) return false;
  call.settled = true;
  call.timer?.cancel();
  return true;
}

export class MessengerClient {
  readonly address: string;
  readonly #host: string;
  readonly #port: number;
  readonly #options: MessengerClientOptions;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #settings: Settings;
  readonly #queue: Call[] = [];
  #connection: ClientConnection | undefined;
  #connects = 0;
  #closed = false;

  constructor(options: MessengerClientOptions) {
    this.address = options.address;
    ({ host: this.#host, port: this.#port } = parseAddress(options.address));
    if (this.#port === 0) throw new StorageError('INVALID_ARGUMENT', `cannot connect to port 0 (${options.address})`);
    this.#options = options;
    this.#logger = (options.logger ?? silentLogger).child({ peer: options.address });
    this.#clock = options.clock ?? systemClock;
    this.#settings = {
      headerBytesMax: options.headerBytesMax ?? messengerDefaults.headerBytesMax,
      payloadBytesMax: options.payloadBytesMax ?? messengerDefaults.payloadBytesMax,
      inflightRequestsMax: options.inflightRequestsMax ?? messengerDefaults.clientInflightRequestsMax,
      queuedRequestsMax: options.queuedRequestsMax ?? messengerDefaults.clientQueuedRequestsMax,
      connectTimeoutMs: options.connectTimeoutMs ?? messengerDefaults.connectTimeoutMs,
      idleTimeoutMs: options.idleTimeoutMs ?? messengerDefaults.clientIdleTimeoutMs,
    };
    if (this.#settings.inflightRequestsMax < 1) throw new TypeError('inflightRequestsMax must be at least 1');
  }

  /**
   * Sends `op` with its typed header and raw payload; resolves with the reply's header and payload, or rejects with
   * a StorageError (see the file comment for which code means what). The payload is written as it is, not copied,
   * so it must not change until the promise settles; a pooled one (src/common/buffer-pool.ts) is held by the client
   * until then and by the socket until written.
   */
  request(op: string, header: Uint8Array, payload: Uint8Array | undefined, options: RequestOptions): Promise<MessengerReply> {
    return new Promise<MessengerReply>((resolve, reject) => this.#submit('request', op, header, payload, options, resolve, reject));
  }

  /**
   * Sends a one-way message (no reply, no delivery guarantee: a lost connection loses it silently). Resolves once it
   * is handed to the socket; rejects as `request` does when it cannot get that far.
   */
  notify(op: string, header: Uint8Array, payload: Uint8Array | undefined, options: RequestOptions): Promise<void> {
    return new Promise<void>((resolve, reject) =>
      this.#submit('oneWay', op, header, payload, options, () => resolve(), reject),
    );
  }

  stats(): MessengerClientStats {
    const connection = this.#connection;
    return {
      connected: connection?.ready ?? false,
      inflightRequests: connection?.inflight.size ?? 0,
      queuedRequests: this.#queue.length,
      bufferedWriteBytes: connection?.bufferedWriteBytes ?? 0,
      connects: this.#connects,
    };
  }

  /** Fails everything queued or in flight with SHUTTING_DOWN and closes the connection; later calls fail the same. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const error = new StorageError('SHUTTING_DOWN', `messenger client for ${this.address} is closed`);
    for (const call of this.#queue.splice(0)) if (settle(call)) call.reject(error);
    const connection = this.#connection;
    this.#connection = undefined;
    connection?.destroy(error, error);
  }

  #submit(
    kind: FrameKind,
    op: string,
    header: Uint8Array,
    payload: Uint8Array | undefined,
    options: RequestOptions,
    resolve: (reply: MessengerReply) => void,
    reject: (error: StorageError) => void,
  ): void {
    if (this.#closed) {
      reject(new StorageError('SHUTTING_DOWN', `messenger client for ${this.address} is closed`));
      return;
    }
    // Room for the header's other fields: id, kind and the error fields of a reply stay well under 64 bytes.
    if (header.length + Buffer.byteLength(op) + 64 > this.#settings.headerBytesMax) {
      reject(new StorageError('TOO_LARGE', `${op}: header of ${header.length} bytes exceeds the messenger's limit`));
      return;
    }
    if ((payload?.length ?? 0) > this.#settings.payloadBytesMax) {
      reject(new StorageError('TOO_LARGE', `${op}: payload of ${payload?.length} bytes exceeds ${this.#settings.payloadBytesMax}`));
      return;
    }
    if (this.#queue.length >= this.#settings.queuedRequestsMax) {
      reject(new StorageError('BUSY', `${op}: ${this.#queue.length} requests already queued for ${this.address}`));
      return;
    }
    // A pooled payload stays held until the call settles (a queued call is written later) and the frame writer holds
    // it until written, so a caller may give back its own hold whenever it likes.
    if (payload !== undefined && bufferPool.retain(payload)) {
      const [settleResolve, settleReject] = [resolve, reject];
      resolve = (reply) => {
        bufferPool.release(payload);
        settleResolve(reply);
      };
      reject = (error) => {
        bufferPool.release(payload);
        settleReject(error);
      };
    }
    const call: Call = {
      kind,
      op,
      header,
      payload,
      resolve,
      reject,
      timer: undefined,
      connection: undefined,
      id: 0,
      settled: false,
    };
    call.timer = this.#clock.setTimer(options.timeoutMs, () => this.#timeout(call, options.timeoutMs));
    this.#queue.push(call);
    this.#pump();
  }

  #timeout(call: Call, timeoutMs: number): void {
    if (!settle(call)) return;
    if (call.connection === undefined) {
      const at = this.#queue.indexOf(call);
      if (at >= 0) this.#queue.splice(at, 1);
    } else {
      call.connection.inflight.delete(call.id);
    }
    call.reject(new StorageError('TIMEOUT', `${call.op}: no reply from ${this.address} within ${timeoutMs} ms`));
    this.#pump();
  }

  /** Moves queued calls onto the wire while the connection has room; opens a connection when there is none. */
  #pump(): void {
    if (this.#closed || this.#queue.length === 0) return;
    const connection = this.#connection;
    if (connection === undefined) {
      this.#connect();
      return;
    }
    while (this.#queue.length > 0 && connection.canSend(this.#settings.inflightRequestsMax)) {
      connection.send(this.#queue.shift() as Call);
    }
  }

  #connect(): void {
    this.#connects++;
    const parser = new FrameParser(this.#settings);
    const socket = connectReading({ host: this.#host, port: this.#port, noDelay: true, keepAlive: true }, parser, () => connection.onBytes());
    const connection: ClientConnection = new ClientConnection(socket, parser, this.#settings, this.#logger, {
      ready: () => this.#pump(),
      drained: () => this.#pump(),
      closed: (error, everReady) => this.#lost(connection, error, everReady),
    });
    this.#connection = connection;
    const connectTimer = this.#clock.setTimer(this.#settings.connectTimeoutMs, () =>
      connection.destroy(
        new StorageError('UNAVAILABLE', `no connection to ${this.address} within ${this.#settings.connectTimeoutMs} ms`),
      ),
    );
    socket.once('connect', () => {
      const handshake = this.#options.handshake;
      if (handshake === undefined) {
        connectTimer.cancel();
        connection.markReady();
        return;
      }
      handshake((header, payload) => connection.exchange(header, payload)).then(
        () => {
          connectTimer.cancel();
          connection.markReady();
        },
        (error: unknown) => {
          connectTimer.cancel();
          connection.destroy(StorageError.from(error));
        },
      );
    });
    socket.once('close', () => connectTimer.cancel());
  }

  #lost(connection: ClientConnection, error: StorageError | undefined, everReady: boolean): void {
    if (this.#connection === connection) this.#connection = undefined;
    if (this.#closed) return;
    if (!everReady) {
      // The connect or the handshake failed: nothing queued could have been sent, and retrying at once would only
      // fail again. Each caller decides whether to retry.
      const reason =
        error && error.code !== 'INTERNAL' && error.code !== 'UNAVAILABLE'
          ? error
          : new StorageError('UNAVAILABLE', `cannot connect to ${this.address}: ${error?.message ?? 'closed'}`, {
              cause: error,
            });
      for (const call of this.#queue.splice(0)) if (settle(call)) call.reject(reason);
      return;
    }
    this.#pump();
  }
}

interface ConnectionHooks {
  ready(): void;
  drained(): void;
  /** Called once, after every call in flight on the connection has been failed. */
  closed(error: StorageError | undefined, everReady: boolean): void;
}

class ClientConnection {
  readonly inflight = new Map<number, Call>();
  readonly #socket: net.Socket;
  readonly #settings: Settings;
  readonly #logger: Logger;
  readonly #hooks: ConnectionHooks;
  readonly #parser: FrameParser;
  readonly #writer: FrameWriter;
  #ready = false;
  #nextId = 1;
  /** Why the connection ended, when we ended it or the socket failed. */
  #error: StorageError | undefined;

  /** `parser` receives the socket's bytes (see socket-reader.ts); `onBytes` is called after each read. */
  constructor(socket: net.Socket, parser: FrameParser, settings: Settings, logger: Logger, hooks: ConnectionHooks) {
    this.#socket = socket;
    this.#settings = settings;
    this.#logger = logger;
    this.#hooks = hooks;
    this.#parser = parser;
    this.#writer = new FrameWriter(socket);
    socket.setTimeout(settings.idleTimeoutMs);
    socket.on('drain', () => hooks.drained());
    socket.on('timeout', () => {
      if (this.inflight.size === 0) socket.destroy();
    });
    socket.on('error', (error) => {
      this.#error ??= new StorageError('UNAVAILABLE', error.message, { cause: error });
    });
    socket.on('close', () => this.#onClose());
  }

  get ready(): boolean {
    return this.#ready;
  }

  get bufferedWriteBytes(): number {
    return this.#socket.writableLength;
  }

  markReady(): void {
    if (this.#socket.destroyed) return;
    this.#ready = true;
    this.#hooks.ready();
  }

  canSend(inflightRequestsMax: number): boolean {
    return this.#ready && !this.#socket.destroyed && this.inflight.size < inflightRequestsMax && !this.#socket.writableNeedDrain;
  }

  send(call: Call): void {
    const id = this.#allocateId();
    call.id = id;
    call.connection = this;
    if (call.kind !== 'oneWay') this.inflight.set(id, call);
    this.#writer.write(
      { id, kind: call.kind, op: call.op, errorCode: '', errorMessage: '', opHeader: call.header },
      call.payload,
    );
    if (call.kind === 'oneWay' && settle(call)) call.resolve(emptyReply);
  }

  /** One handshake round trip; bypasses the queue and the in-flight bound (nothing else is sent meanwhile). */
  exchange(header: Uint8Array, payload: Uint8Array | undefined): Promise<MessengerReply> {
    return new Promise<MessengerReply>((resolve, reject) => {
      if (this.#socket.destroyed) {
        reject(this.#error ?? new StorageError('UNAVAILABLE', 'connection closed during the handshake'));
        return;
      }
      this.send({
        kind: 'handshake',
        op: '',
        header,
        payload,
        resolve,
        reject,
        timer: undefined,
        connection: undefined,
        id: 0,
        settled: false,
      });
    });
  }

  /** Closes the connection; with `failInflight`, calls on the wire fail with it now instead of UNAVAILABLE later. */
  destroy(error: StorageError, failInflight?: StorageError): void {
    this.#error ??= error;
    if (failInflight !== undefined) {
      for (const call of this.inflight.values()) if (settle(call)) call.reject(failInflight);
      this.inflight.clear();
    }
    this.#socket.destroy();
  }

  /** Ids wrap at 2^32; one still in flight after four billion later requests is skipped. */
  #allocateId(): number {
    for (;;) {
      const id = this.#nextId;
      this.#nextId = id === 0xffff_ffff ? 1 : id + 1;
      if (!this.inflight.has(id)) return id;
    }
  }

  /** Hands every complete frame the parser holds to its caller. */
  onBytes(): void {
    for (;;) {
      let frame: ParsedFrame | undefined;
      try {
        frame = this.#parser.next();
      } catch (error) {
        this.#logger.warn('closing messenger connection: bad frame from server', { error: String(error) });
        this.destroy(new StorageError('UNAVAILABLE', `bad frame from server: ${String(error)}`, { cause: error }));
        return;
      }
      if (frame === undefined) return;
      if (frame.header.kind !== 'response') {
        this.#logger.warn('closing messenger connection: server sent a non-response frame', { kind: frame.header.kind });
        this.destroy(new StorageError('UNAVAILABLE', `server sent a ${frame.header.kind} frame`));
        return;
      }
      this.#onResponse(frame);
    }
  }

  #onResponse(frame: ParsedFrame): void {
    const { header } = frame;
    const call = this.inflight.get(header.id);
    if (call === undefined) {
      // The caller gave up on it (timeout); the late reply has nowhere to go.
      this.#logger.debug('dropping reply to a request no longer waiting', { id: header.id });
      return;
    }
    this.inflight.delete(header.id);
    if (!settle(call)) return;
    if (header.errorCode !== '') {
      call.reject(errorFromFields(header.errorCode, header.errorMessage, call.op));
    } else if (frame.payload === undefined) {
      call.reject(
        new StorageError('TOO_LARGE', `${call.op}: reply payload of ${frame.discardedPayloadBytes} bytes exceeds ${this.#settings.payloadBytesMax}`),
      );
    } else {
      call.resolve({ header: header.opHeader, payload: frame.payload });
    }
    this.#hooks.drained();
  }

  #onClose(): void {
    const everReady = this.#ready;
    this.#ready = false;
    const cause = this.#error;
    const lost = new StorageError(
      'UNAVAILABLE',
      `connection lost with the request in flight${cause ? `: ${cause.message}` : ''}`,
      { cause },
    );
    for (const call of this.inflight.values()) {
      if (!settle(call)) continue;
      // A handshake step fails with the reason itself (e.g. AUTH_FAILED sent back by the server is already settled).
      call.reject(call.kind === 'handshake' ? (cause ?? lost) : new StorageError('UNAVAILABLE', `${call.op}: ${lost.message}`, { cause }));
    }
    this.inflight.clear();
    this.#hooks.closed(cause, everReady);
  }
}

export interface MessengerPoolOptions extends Omit<MessengerClientOptions, 'address'> {
  /** Connections kept open at once; past it the least recently used idle one is closed. */
  peersMax?: number;
}

/**
 * One MessengerClient per server address, opened on first use. Bounded: when `peersMax` clients exist, the least
 * recently used one with nothing queued or in flight is closed to make room; when every one is busy, BUSY.
 */
export class MessengerPool {
  readonly #options: MessengerPoolOptions;
  readonly #clients = new Map<string, MessengerClient>();
  #closed = false;

  constructor(options: MessengerPoolOptions = {}) {
    this.#options = options;
  }

  client(address: string): MessengerClient {
    if (this.#closed) throw new StorageError('SHUTTING_DOWN', 'messenger pool is closed');
    const existing = this.#clients.get(address);
    if (existing !== undefined) {
      // Re-inserting keeps the Map in least-recently-used order.
      this.#clients.delete(address);
      this.#clients.set(address, existing);
      return existing;
    }
    const peersMax = this.#options.peersMax ?? messengerDefaults.poolPeersMax;
    if (this.#clients.size >= peersMax) this.#evictOne(address);
    const client = new MessengerClient({ ...this.#options, address });
    this.#clients.set(address, client);
    return client;
  }

  request(
    address: string,
    op: string,
    header: Uint8Array,
    payload: Uint8Array | undefined,
    options: RequestOptions,
  ): Promise<MessengerReply> {
    let client: MessengerClient;
    try {
      client = this.client(address);
    } catch (error) {
      return Promise.reject(error);
    }
    return client.request(op, header, payload, options);
  }

  get size(): number {
    return this.#clients.size;
  }

  close(): void {
    this.#closed = true;
    for (const client of this.#clients.values()) client.close();
    this.#clients.clear();
  }

  #evictOne(forAddress: string): void {
    for (const [address, client] of this.#clients) {
      const stats = client.stats();
      if (stats.inflightRequests === 0 && stats.queuedRequests === 0) {
        client.close();
        this.#clients.delete(address);
        return;
      }
    }
    throw new StorageError('BUSY', `messenger pool: all ${this.#clients.size} connections are busy; cannot open ${forAddress}`);
  }
}
