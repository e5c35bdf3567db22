/**
 * The byte-level half of the messenger, shared by both ends: an incremental frame parser over socket chunks and a
 * frame writer that batches the frames of one event-loop turn into one writev. The frame layout itself lives in
 * src/protocol/messenger-codec.ts.
 *
 * The parser is pull-based (bytes in, `next` frames out) so a receiver that wants no more work simply stops calling
 * `next`: bytes it has already read stay as they are and nothing more is decoded or allocated. Bytes come in two
 * ways: `push` takes chunks the caller owns (a socket's 'data' events), while `readTarget`/`received` let the socket
 * read in place (see socket-reader.ts): into a reused scratch buffer, or, once a large payload's header is parsed,
 * straight into that payload's own buffer, so its bytes are copied once (by the kernel) and no chunk is allocated.
 */
import type { Socket } from 'node:net';
import { StorageError, TurnCork, bufferPool } from '../common/index.js';
import {
  decodeFrameHeader,
  decodeFramePrefix,
  encodeFrameHead,
  framePrefixBytes,
  type FrameHeader,
  type FramePrefix,
} from '../protocol/index.js';

export interface FrameLimits {
  /** Largest protobuf header accepted; a larger declared length closes the connection (no reply can be framed). */
  headerBytesMax: number;
  /** Largest payload accepted; a larger one is skipped unread and its request answered with TOO_LARGE. */
  payloadBytesMax: number;
}

/**
 * A complete frame. `payload` is a view of the received bytes (a copy only when the frame straddled socket chunks),
 * so it may keep those chunks alive: copy a small payload if you keep it long. A payload of `directPayloadBytesMin`
 * or more that did not arrive whole is its own buffer. `discardedPayloadBytes` is set instead of `payload`
 * for a frame whose payload exceeded the limit and was skipped.
 */
export type ParsedFrame =
  | { header: FrameHeader; payload: Buffer; discardedPayloadBytes?: undefined }
  | { header: FrameHeader; payload?: undefined; discardedPayloadBytes: number };

const emptyPayload = Buffer.alloc(0);

/**
 * A payload at least this large that has not fully arrived with its header gets its own buffer at once, and the rest
 * of it is read (or copied) straight there. Smaller ones are gathered from chunks when complete.
 */
export const directPayloadBytesMin = 64 * 1024;
/** The scratch buffer socket reads go to between large payloads (Node's own read size). */
const scratchBytes = 64 * 1024;

/**
 * An allocation failure (address space exhausted) fails the connection that asked, not the process. A large payload's
 * buffer comes from the process's `bufferPool` (src/common/buffer-pool.ts says who gives it back).
 */
function allocate(bytes: number, pooled = false): Buffer {
  try {
    return pooled ? bufferPool.acquire(bytes) : Buffer.allocUnsafe(bytes);
  } catch (error) {
    throw new StorageError('NO_SPACE', `cannot allocate ${bytes} bytes for a messenger payload`, { cause: error });
  }
}

export class FrameParser {
  readonly #limits: FrameLimits;
  #chunks: Buffer[] = [];
  /** Offset of the first unread byte in #chunks[0]. */
  #offset = 0;
  #buffered = 0;
  #prefix: FramePrefix | undefined;
  #header: FrameHeader | undefined;
  /** Bytes of an oversized payload still to be skipped. */
  #discard = 0;
  /** The large payload being received in place, and how much of it has arrived. */
  #direct: { buffer: Buffer; filled: number } | undefined;
  #scratch: Buffer | undefined;

  constructor(limits: FrameLimits) {
    this.#limits = limits;
  }

  /** Bytes held: received and not yet handed out as part of a frame. */
  get bufferedBytes(): number {
    return this.#buffered + (this.#direct?.filled ?? 0);
  }

  /** True when part of a frame has arrived and the rest has not. */
  get midFrame(): boolean {
    return this.#buffered > 0 || this.#prefix !== undefined || this.#discard > 0 || this.#direct !== undefined;
  }

  /** Takes bytes the caller hands over for good (the parser may keep views of `chunk`). */
  push(chunk: Buffer): void {
    if (this.#discard > 0) {
      const skip = Math.min(this.#discard, chunk.length);
      this.#discard -= skip;
      if (skip === chunk.length) return;
      chunk = chunk.subarray(skip);
    }
    chunk = chunk.subarray(this.#fillDirect(chunk));
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  /**
   * Where the next socket read should go: the unfilled rest of the large payload being received, else a scratch
   * buffer that is reused (so `received` copies what it keeps of it).
   */
  readTarget(): Buffer {
    const direct = this.#direct;
    if (direct !== undefined && direct.filled < direct.buffer.length) return direct.buffer.subarray(direct.filled);
    this.#scratch ??= allocate(scratchBytes);
    return this.#scratch;
  }

  /** `bytes` bytes were read into the start of `target`, a buffer `readTarget` returned. */
  received(target: Buffer, bytes: number): void {
    if (target !== this.#scratch) {
      const direct = this.#direct;
      if (direct === undefined || target.buffer !== direct.buffer.buffer || direct.filled + bytes > direct.buffer.length) {
        throw new TypeError('messenger frame: bytes were read into a buffer the parser did not hand out');
      }
      direct.filled += bytes;
      return;
    }
    // Scratch bytes: what belongs to the payload in progress is copied there; the rest gets a buffer of its own.
    const read = target.subarray(0, bytes);
    const used = this.#discard > 0 ? 0 : this.#fillDirect(read);
    if (used < bytes) this.push(Buffer.from(read.subarray(used)));
  }

  /** Copies the start of `bytes` into the rest of the large payload being received; returns how many it took. */
  #fillDirect(bytes: Buffer): number {
    const direct = this.#direct;
    if (direct === undefined) return 0;
    const n = bytes.copy(direct.buffer, direct.filled);
    direct.filled += n;
    return n;
  }

  /**
   * The next complete frame, or undefined until more bytes arrive. Throws StorageError (CORRUPT_DATA, TOO_LARGE,
   * UNSUPPORTED_VERSION) when the stream cannot be a valid frame sequence; the connection is then beyond repair.
   */
  next(): ParsedFrame | undefined {
    if (this.#discard > 0) return undefined;
    if (this.#prefix === undefined) {
      if (this.#buffered < framePrefixBytes) return undefined;
      const prefix = decodeFramePrefix(this.#take(framePrefixBytes));
      if (prefix.headerBytes > this.#limits.headerBytesMax) {
        throw new StorageError(
          'TOO_LARGE',
          `messenger frame: header of ${prefix.headerBytes} bytes exceeds ${this.#limits.headerBytesMax}`,
        );
      }
      this.#prefix = prefix;
    }
    const prefix = this.#prefix;
    if (this.#header === undefined) {
      if (this.#buffered < prefix.headerBytes) return undefined;
      this.#header = decodeFrameHeader(this.#take(prefix.headerBytes));
    }
    const header = this.#header;
    if (prefix.payloadBytes > this.#limits.payloadBytesMax) {
      this.#prefix = undefined;
      this.#header = undefined;
      const now = Math.min(prefix.payloadBytes, this.#buffered);
      this.#skip(now);
      this.#discard = prefix.payloadBytes - now;
      return { header, discardedPayloadBytes: prefix.payloadBytes };
    }
    let payload: Buffer;
    const direct = this.#direct;
    if (direct !== undefined) {
      if (direct.filled < direct.buffer.length) return undefined;
      payload = direct.buffer;
      this.#direct = undefined;
    } else if (this.#buffered >= prefix.payloadBytes) {
      payload = prefix.payloadBytes === 0 ? emptyPayload : this.#take(prefix.payloadBytes);
    } else {
      // A large payload gets its buffer now, so the socket can read the rest in place. (At most one per connection,
      // under the payload limit: what a peer only declares costs it no more than that.) A small one is copied once,
      // when complete.
      if (prefix.payloadBytes >= directPayloadBytesMin) {
        const buffer = allocate(prefix.payloadBytes, true);
        const filled = this.#buffered;
        this.#copyOut(buffer, filled);
        this.#direct = { buffer, filled };
      }
      return undefined;
    }
    this.#prefix = undefined;
    this.#header = undefined;
    return { header, payload };
  }

  /** Removes `length` (≤ buffered) bytes: a view when they lie in one chunk, else one copy. */
  #take(length: number): Buffer {
    const first = this.#chunks[0] as Buffer;
    const available = first.length - this.#offset;
    if (available >= length) {
      const out = first.subarray(this.#offset, this.#offset + length);
      this.#advance(length);
      return out;
    }
    const out = allocate(length);
    this.#copyOut(out, length);
    return out;
  }

  /** Moves the first `length` (≤ buffered) bytes into the start of `out`. */
  #copyOut(out: Buffer, length: number): void {
    let filled = 0;
    while (filled < length) {
      const chunk = this.#chunks[0] as Buffer;
      const n = Math.min(chunk.length - this.#offset, length - filled);
      chunk.copy(out, filled, this.#offset, this.#offset + n);
      filled += n;
      this.#advance(n);
    }
  }

  #skip(length: number): void {
    while (length > 0) {
      const chunk = this.#chunks[0] as Buffer;
      const n = Math.min(chunk.length - this.#offset, length);
      this.#advance(n);
      length -= n;
    }
  }

  /** Moves past `n` bytes of the first chunk (n ≤ what it has left). */
  #advance(n: number): void {
    this.#offset += n;
    this.#buffered -= n;
    if (this.#offset === (this.#chunks[0] as Buffer).length) {
      this.#chunks.shift();
      this.#offset = 0;
    }
  }
}

/**
 * Writes frames to a socket. The first write in an event-loop turn corks the socket and the uncork is scheduled for
 * the end of the turn, so every frame produced in that turn (many responses, many requests) leaves in one writev.
 */
export class FrameWriter {
  readonly #socket: Socket;
  readonly #cork: TurnCork;

  constructor(socket: Socket) {
    this.#socket = socket;
    this.#cork = new TurnCork(socket);
  }

  /** Queues one frame; returns false when the socket's buffer is over its high-water mark (wait for 'drain'). */
  write(header: FrameHeader, payload: Uint8Array | undefined): boolean {
    const socket = this.#socket;
    if (socket.destroyed || socket.writableEnded) return false;
    this.#cork.hold();
    // Header and payload go out as separate buffers of one writev: copying even small payloads behind the header
    // measured slower than the extra iovec entry (a fresh allocation per frame, then GC).
    const payloadBytes = payload?.length ?? 0;
    const head = encodeFrameHead(header, payloadBytes);
    if (payload === undefined || payloadBytes === 0) return socket.write(head);
    socket.write(head);
    // Pooled bytes stay held until the socket has written them (or dropped them with itself): the sender's caller may
    // give its own hold back as soon as its request settles, which can be before a slow peer has read them.
    if (bufferPool.retain(payload)) return socket.write(payload, () => bufferPool.release(payload));
    return socket.write(payload);
  }
}
