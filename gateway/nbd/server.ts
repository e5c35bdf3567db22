/**
 * The NBD server: fixed newstyle handshake (LIST, INFO, GO, EXPORT_NAME, ABORT, STRUCTURED_REPLY,
 * LIST/SET_META_CONTEXT base:allocation), then commands, many in flight per connection and answered as each
 * completes. A malformed option or command gets the protocol's error and the connection stays; only what the
 * protocol cannot resynchronise after (a bad magic, an oversized payload) closes it.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { StorageError, TurnCork, type Image, type Logger } from '../../src/index.js';
import type { ExportHandle, ExportRegistry } from './exports.js';
import { nbdErrnoFor, optionErrorFor } from './nbd-errors.js';
import {
  BASE_ALLOCATION,
  Cmd,
  CmdFlag,
  FLAG_FIXED_NEWSTYLE,
  FLAG_NO_ZEROES,
  Info,
  NbdErrno,
  NbdProtocolError,
  Opt,
  REQUEST_HEADER_LENGTH,
  Rep,
  STATE_HOLE,
  STATE_ZERO,
  TFlag,
  checkRange,
  decodeInfoRequest,
  decodeMetaContextRequest,
  decodeOptionHeader,
  decodeRequestHeader,
  encodeBlockStatus,
  encodeExportNameReply,
  encodeGreeting,
  encodeInfoBlockSize,
  encodeInfoDescription,
  encodeInfoExport,
  encodeInfoName,
  encodeMetaContextReply,
  encodeOffsetDataHeader,
  encodeOffsetHole,
  encodeOptionError,
  encodeOptionReply,
  encodeServerReply,
  encodeSimpleReply,
  encodeStructuredError,
  mergeExtents,
  type BlockSizes,
  type Request,
} from './protocol.js';

export interface NbdServerOptions {
  host: string;
  port: number;
  /** Requests one connection may have in flight; reading stops while it is reached. */
  inflightMax?: number;
}

export const blockSizes: BlockSizes = { minimum: 512, preferred: 4096, maximum: 32 * 1024 * 1024 };
/** Option data beyond this closes the connection (no option of ours needs more). */
const optionLengthMax = 64 * 1024;
/** A write longer than the maximum is read and dropped up to this, so the stream stays in step; beyond, the connection closes. */
const discardLengthMax = 128 * 1024 * 1024;
/** BLOCK_STATUS answers at most this much per request (clients ask again for the rest). */
const statusLengthMax = 1024 * 1024 * 1024;
const allocationContextId = 1;
/** Bytes of reads and writes one connection may have in flight (its replies wait in memory until sent). */
const inflightBytesMax = 256 * 1024 * 1024;

export interface NbdServer {
  readonly address: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createNbdServer(options: NbdServerOptions, deps: { exports: ExportRegistry; logger: Logger }): NbdServer {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let address = `${options.host}:${options.port}`;
  return {
    get address() {
      return address;
    },
    async start() {
      server = createServer((socket) => {
        sockets.add(socket);
        socket.setNoDelay(true);
        const connection = new Connection(socket, deps.exports, deps.logger, options.inflightMax ?? 64);
        connection.run().catch((error: unknown) => deps.logger.warn('connection ended with an error', { error: String(error) }));
        socket.once('close', () => sockets.delete(socket));
      });
      await new Promise<void>((resolve, reject) => {
        server?.once('error', reject);
        server?.listen(options.port, options.host, () => resolve());
      });
      const a = server.address();
      if (a && typeof a === 'object') address = `${a.address}:${a.port}`;
    },
    async stop() {
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      for (const s of sockets) s.destroy();
      await deps.exports.closeAll();
    },
  };
}

/** Reads exact byte counts from a socket, pausing it while enough is buffered. */
class SocketReader {
  #chunks: Buffer[] = [];
  #buffered = 0;
  #waiter: { n: number; resolve(b: Buffer): void; reject(e: Error): void } | undefined;
  #ended: Error | undefined;

  constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      if (this.#buffered > 64 * 1024 * 1024) socket.pause();
      this.#serve();
    });
    const end = (e: Error) => {
      this.#ended ??= e;
      const w = this.#waiter;
      this.#waiter = undefined;
      w?.reject(this.#ended);
    };
    socket.on('end', () => end(new NbdProtocolError('client closed the connection')));
    socket.on('close', () => end(new NbdProtocolError('connection closed')));
    socket.on('error', (e) => end(e));
  }

  read(n: number): Promise<Buffer> {
    if (n === 0) return Promise.resolve(Buffer.alloc(0));
    if (this.#buffered >= n) return Promise.resolve(this.#take(n));
    if (this.#ended) return Promise.reject(this.#ended);
    this.socket.resume();
    return new Promise((resolve, reject) => {
      this.#waiter = { n, resolve, reject };
    });
  }

  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      const step = Math.min(left, 1024 * 1024);
      await this.read(step);
      left -= step;
    }
  }

  #serve(): void {
    const w = this.#waiter;
    if (w && this.#buffered >= w.n) {
      this.#waiter = undefined;
      w.resolve(this.#take(w.n));
    }
  }

  #take(n: number): Buffer {
    let out: Buffer;
    const first = this.#chunks[0] as Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const c = this.#chunks[0] as Buffer;
        const k = Math.min(c.length, n - at);
        c.copy(out, at, 0, k);
        at += k;
        if (k === c.length) this.#chunks.shift();
        else this.#chunks[0] = c.subarray(k);
      }
    }
    this.#buffered -= n;
    if (this.#buffered < 16 * 1024 * 1024 && this.socket.isPaused()) this.socket.resume();
    return out;
  }
}

class Connection {
  readonly #socket: Socket;
  readonly #reader: SocketReader;
  readonly #exports: ExportRegistry;
  readonly #logger: Logger;
  readonly #inflightMax: number;
  #structured = false;
  #metaContext: { exportName: string; allocation: boolean } | undefined;
  #export: ExportHandle | undefined;
  #alignment = 1;
  #inflight = 0;
  #inflightBytes = 0;
  #slotWaiters: (() => void)[] = [];
  #closed = false;
  readonly #cork: TurnCork;

  constructor(socket: Socket, exports: ExportRegistry, logger: Logger, inflightMax: number) {
    this.#socket = socket;
    this.#cork = new TurnCork(socket);
    this.#reader = new SocketReader(socket);
    this.#exports = exports;
    this.#logger = logger;
    this.#inflightMax = inflightMax;
    socket.on('close', () => (this.#closed = true));
    socket.on('error', () => {});
  }

  /** Replies written in one event-loop turn leave together (TurnCork). */
  #send(...buffers: Buffer[]): void {
    if (this.#closed) return;
    this.#cork.hold();
    for (const b of buffers) this.#socket.write(b);
  }

  async run(): Promise<void> {
    try {
      this.#send(encodeGreeting());
      const flags = (await this.#reader.read(4)).readUInt32BE(0);
      if ((flags & ~(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES)) !== 0) throw new NbdProtocolError(`unknown client flags 0x${flags.toString(16)}`);
      const noZeroes = (flags & FLAG_NO_ZEROES) !== 0;
      const handle = await this.#negotiate(noZeroes);
      if (!handle) return;
      this.#export = handle;
      await this.#transmit(handle.image);
    } catch (error) {
      if (!(error instanceof NbdProtocolError)) this.#logger.warn('connection failed', { error: String(error) });
      else this.#logger.debug('connection closed', { reason: error.message });
    } finally {
      await this.#drain();
      await this.#export?.release();
      this.#socket.end();
      this.#socket.destroySoon();
    }
  }

  #flagsFor(image: Image): number {
    let flags = TFlag.HAS_FLAGS | TFlag.SEND_FLUSH | TFlag.SEND_FUA | TFlag.SEND_TRIM | TFlag.SEND_WRITE_ZEROES | TFlag.CAN_MULTI_CONN;
    if (this.#structured) flags |= TFlag.SEND_DF;
    if (image.readOnly) flags = (flags | TFlag.READ_ONLY) & ~(TFlag.SEND_TRIM | TFlag.SEND_WRITE_ZEROES);
    return flags;
  }

  /** The option haggling; resolves with the export to serve, or undefined when the client left. */
  async #negotiate(noZeroes: boolean): Promise<ExportHandle | undefined> {
    for (;;) {
      const { option, length } = decodeOptionHeader(await this.#reader.read(16));
      if (length > optionLengthMax) {
        if (length > discardLengthMax) throw new NbdProtocolError(`option of ${length} bytes`);
        await this.#reader.skip(length);
        this.#send(encodeOptionError(option, Rep.ERR_TOO_BIG, `option data of ${length} bytes is too long`));
        continue;
      }
      const data = await this.#reader.read(length);
      switch (option) {
        case Opt.EXPORT_NAME: {
          // No way to report an error here but closing the connection.
          const handle = await this.#exports.acquire(data.toString('utf8')).catch((error: unknown) => {
            this.#logger.info('EXPORT_NAME refused', { name: data.toString('utf8'), error: String(error) });
            return undefined;
          });
          if (!handle) return undefined;
          this.#send(encodeExportNameReply(handle.image.size, this.#flagsFor(handle.image), noZeroes));
          return handle;
        }
        case Opt.ABORT:
          this.#send(encodeOptionReply(option, Rep.ACK));
          return undefined;
        case Opt.LIST: {
          if (length !== 0) {
            this.#send(encodeOptionError(option, Rep.ERR_INVALID, 'NBD_OPT_LIST takes no data'));
            break;
          }
          try {
            for (const name of await this.#exports.list()) this.#send(encodeServerReply(name, `Shoal image ${name}`));
            this.#send(encodeOptionReply(option, Rep.ACK));
          } catch (error) {
            this.#send(encodeOptionError(option, Rep.ERR_PLATFORM, StorageError.from(error).message));
          }
          break;
        }
        case Opt.STRUCTURED_REPLY:
          if (length !== 0) {
            this.#send(encodeOptionError(option, Rep.ERR_INVALID, 'NBD_OPT_STRUCTURED_REPLY takes no data'));
            break;
          }
          this.#structured = true;
          this.#send(encodeOptionReply(option, Rep.ACK));
          break;
        case Opt.INFO:
        case Opt.GO: {
          const handle = await this.#info(option, data);
          if (handle && option === Opt.GO) return handle;
          await handle?.release();
          break;
        }
        case Opt.LIST_META_CONTEXT:
        case Opt.SET_META_CONTEXT:
          await this.#setMetaContext(option, data);
          break;
        case Opt.STARTTLS:
          this.#send(encodeOptionError(option, Rep.ERR_POLICY, 'TLS is not offered by this server'));
          break;
        default:
          this.#send(encodeOptionError(option, Rep.ERR_UNSUP, `option ${option} is not supported`));
      }
    }
  }

  async #info(option: number, data: Buffer): Promise<ExportHandle | undefined> {
    let request;
    try {
      request = decodeInfoRequest(data);
    } catch (error) {
      this.#send(encodeOptionError(option, Rep.ERR_INVALID, (error as Error).message));
      return undefined;
    }
    let handle: ExportHandle;
    try {
      handle = await this.#exports.acquire(request.name);
    } catch (error) {
      const e = StorageError.from(error);
      this.#send(encodeOptionError(option, optionErrorFor(e.code), e.message));
      return undefined;
    }
    const image = handle.image;
    this.#send(encodeInfoExport(option, image.size, this.#flagsFor(image)));
    if (request.requests.includes(Info.NAME)) this.#send(encodeInfoName(option, request.name));
    if (request.requests.includes(Info.DESCRIPTION)) this.#send(encodeInfoDescription(option, `Shoal image ${request.name} (${image.objectSize} byte objects${image.readOnly ? ', read-only' : ''})`));
    // Sent even when not asked for (the spec allows it); alignment is enforced only for clients that asked.
    this.#send(encodeInfoBlockSize(option, blockSizes));
    this.#send(encodeOptionReply(option, Rep.ACK));
    if (option === Opt.GO) {
      this.#alignment = request.requests.includes(Info.BLOCK_SIZE) ? blockSizes.minimum : 1;
      if (this.#metaContext && this.#metaContext.exportName !== request.name) this.#metaContext = undefined;
    }
    return handle;
  }

  async #setMetaContext(option: number, data: Buffer): Promise<void> {
    if (!this.#structured) {
      this.#send(encodeOptionError(option, Rep.ERR_INVALID, 'negotiate NBD_OPT_STRUCTURED_REPLY first'));
      return;
    }
    let request;
    try {
      request = decodeMetaContextRequest(data);
    } catch (error) {
      this.#send(encodeOptionError(option, Rep.ERR_INVALID, (error as Error).message));
      return;
    }
    try {
      await (await this.#exports.acquire(request.name)).release();
    } catch (error) {
      const e = StorageError.from(error);
      this.#send(encodeOptionError(option, optionErrorFor(e.code), e.message));
      return;
    }
    const listing = option === Opt.LIST_META_CONTEXT;
    const matches = request.queries.length === 0 ? listing : request.queries.some((q) => q === BASE_ALLOCATION || (listing && (q === 'base:' || q === 'base')));
    if (matches) this.#send(encodeMetaContextReply(option, listing ? 0 : allocationContextId, BASE_ALLOCATION));
    if (!listing) this.#metaContext = { exportName: request.name, allocation: matches };
    this.#send(encodeOptionReply(option, Rep.ACK));
  }

  /** Waits for room: at most `inflightMax` requests and `inflightBytesMax` bytes of reads and writes per connection. */
  async #slot(bytes: number): Promise<void> {
    while (this.#inflight >= this.#inflightMax || (this.#inflight > 0 && this.#inflightBytes + bytes > inflightBytesMax)) await new Promise<void>((r) => this.#slotWaiters.push(r));
    this.#inflight++;
    this.#inflightBytes += bytes;
  }

  #done(bytes: number): void {
    this.#inflight--;
    this.#inflightBytes -= bytes;
    for (const wake of this.#slotWaiters.splice(0)) wake();
  }

  async #drain(): Promise<void> {
    while (this.#inflight > 0) await new Promise<void>((r) => this.#slotWaiters.push(r));
  }

  async #transmit(image: Image): Promise<void> {
    for (;;) {
      const request = decodeRequestHeader(await this.#reader.read(REQUEST_HEADER_LENGTH));
      let payload: Buffer | undefined;
      if (request.type === Cmd.WRITE) {
        if (request.length > blockSizes.maximum) {
          if (request.length > discardLengthMax) throw new NbdProtocolError(`write of ${request.length} bytes`);
          await this.#reader.skip(request.length);
          this.#error(request, NbdErrno.EOVERFLOW, `writes are at most ${blockSizes.maximum} bytes`);
          continue;
        }
        payload = await this.#reader.read(request.length);
      }
      if (request.type === Cmd.DISC) return;
      const problem = this.#validate(request, image);
      if (problem) {
        this.#error(request, problem.errno, problem.message);
        continue;
      }
      const bytes = request.type === Cmd.READ || request.type === Cmd.WRITE ? request.length : 0;
      await this.#slot(bytes);
      this.#execute(request, image, payload)
        .catch((error: unknown) => {
          const e = StorageError.from(error);
          if (e.code === 'INTERNAL') this.#logger.error('command failed', { type: request.type, offset: request.offset, length: request.length, error: e.message });
          this.#error(request, nbdErrnoFor(e.code), e.message);
        })
        .finally(() => this.#done(bytes));
    }
  }

  #validate(r: Request, image: Image): { errno: number; message: string } | undefined {
    const known: number[] = [Cmd.READ, Cmd.WRITE, Cmd.FLUSH, Cmd.TRIM, Cmd.WRITE_ZEROES, Cmd.BLOCK_STATUS];
    if (!known.includes(r.type)) return { errno: NbdErrno.EINVAL, message: `command ${r.type} is not supported` };
    if ((r.flags & ~(CmdFlag.FUA | CmdFlag.NO_HOLE | CmdFlag.DF | CmdFlag.REQ_ONE)) !== 0) return { errno: NbdErrno.EINVAL, message: `unknown command flags 0x${r.flags.toString(16)}` };
    if (r.flags & CmdFlag.DF && (r.type !== Cmd.READ || !this.#structured)) return { errno: NbdErrno.EINVAL, message: 'DF is for reads with structured replies' };
    if (r.flags & CmdFlag.REQ_ONE && r.type !== Cmd.BLOCK_STATUS) return { errno: NbdErrno.EINVAL, message: 'REQ_ONE is for BLOCK_STATUS' };
    if (r.flags & CmdFlag.NO_HOLE && r.type !== Cmd.WRITE_ZEROES) return { errno: NbdErrno.EINVAL, message: 'NO_HOLE is for WRITE_ZEROES' };
    if (image.readOnly && (r.type === Cmd.WRITE || r.type === Cmd.TRIM || r.type === Cmd.WRITE_ZEROES)) return { errno: NbdErrno.EPERM, message: 'the export is read-only' };
    if (r.type === Cmd.BLOCK_STATUS && !this.#metaContext?.allocation) return { errno: NbdErrno.EINVAL, message: 'no metadata context was negotiated' };
    if (r.type === Cmd.FLUSH) return r.offset !== 0 || r.length !== 0 ? { errno: NbdErrno.EINVAL, message: 'FLUSH takes no range' } : undefined;
    const bad = checkRange(r, image.size, this.#alignment, blockSizes.maximum);
    if (r.type === Cmd.BLOCK_STATUS && bad === NbdErrno.EINVAL && r.length > 0 && r.offset + r.length > image.size && r.offset < image.size) return undefined;
    return bad === undefined ? undefined : { errno: bad, message: `bad range ${r.offset}+${r.length} (export of ${image.size} bytes${this.#alignment > 1 ? `, ${this.#alignment}-byte aligned` : ''})` };
  }

  #error(r: Request, errno: number, message: string): void {
    if (this.#structured) this.#send(encodeStructuredError(r.handle, errno, message));
    else this.#send(encodeSimpleReply(r.handle, errno));
  }

  async #execute(r: Request, image: Image, payload: Buffer | undefined): Promise<void> {
    switch (r.type) {
      case Cmd.READ:
        return this.#read(r, image);
      case Cmd.WRITE:
        await image.write(r.offset, payload as Buffer);
        break;
      case Cmd.FLUSH:
        await image.flush();
        break;
      case Cmd.TRIM:
        await image.zero(r.offset, r.length, true);
        break;
      case Cmd.WRITE_ZEROES:
        await image.zero(r.offset, r.length, (r.flags & CmdFlag.NO_HOLE) === 0);
        break;
      case Cmd.BLOCK_STATUS: {
        const length = Math.min(r.length, image.size - r.offset, statusLengthMax);
        let extents = mergeExtents((await image.allocation(r.offset, length)).map((e) => ({ length: e.length, flags: (e.hole ? STATE_HOLE : 0) | (e.zero ? STATE_ZERO : 0) })));
        if (r.flags & CmdFlag.REQ_ONE) extents = extents.slice(0, 1);
        this.#send(encodeBlockStatus(r.handle, allocationContextId, extents, true));
        return;
      }
    }
    // Writes are durable once acknowledged (every replica synced), which is what FUA asks for.
    // Commands without data may use the simple reply even when structured replies were negotiated.
    this.#send(encodeSimpleReply(r.handle, 0));
  }

  async #read(r: Request, image: Image): Promise<void> {
    if (!this.#structured) {
      const data = await image.read(r.offset, r.length);
      this.#send(encodeSimpleReply(r.handle, 0), data);
      return;
    }
    if (r.flags & CmdFlag.DF) {
      const data = await image.read(r.offset, r.length);
      this.#send(encodeOffsetDataHeader(r.handle, r.offset, data.length, true), data);
      return;
    }
    const extents = await image.readExtents(r.offset, r.length);
    // Adjacent holes become one chunk; data goes out as it is (never copied).
    const chunks: Buffer[] = [];
    const merged: { offset: number; length: number; data?: Buffer }[] = [];
    for (const e of extents) {
      const last = merged.at(-1);
      if (last && !last.data && !e.data) last.length += e.length;
      else merged.push({ ...e });
    }
    merged.forEach((e, i) => {
      const done = i === merged.length - 1;
      if (e.data) chunks.push(encodeOffsetDataHeader(r.handle, e.offset, e.data.length, done), e.data);
      else chunks.push(encodeOffsetHole(r.handle, e.offset, e.length, done));
    });
    this.#send(...chunks);
  }
}
