/**
 * The byte-level half of the messenger, shared by both ends: an incremental frame parser over socket chunks and a
 * frame writer that batches the frames of one event-loop turn into one writev. The frame layout itself lives in
 * src/protocol/messenger-codec.ts.
 *
 * The parser is pull-based (`push` bytes in, `next` frames out) so a receiver that wants no more work simply stops
 * calling `next`: bytes it has already read stay as they are and nothing more is decoded or allocated.
 */
import type { Socket } from 'node:net';
import { StorageError } from '../common/index.js';
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
 * so it keeps those chunks alive: copy it if you keep it long. `discardedPayloadBytes` is set instead of `payload`
 * for a frame whose payload exceeded the limit and was skipped.
 */
export type ParsedFrame =
  | { header: FrameHeader; payload: Buffer; discardedPayloadBytes?: undefined }
  | { header: FrameHeader; payload?: undefined; discardedPayloadBytes: number };

const emptyPayload = Buffer.alloc(0);

/** An allocation failure (address space exhausted) fails the connection that asked, not the process. */
function allocate(bytes: number): Buffer {
  try {
    return Buffer.allocUnsafe(bytes);
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

  constructor(limits: FrameLimits) {
    this.#limits = limits;
  }

  /** Bytes held: received and not yet handed out as part of a frame. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** True when part of a frame has arrived and the rest has not. */
  get midFrame(): boolean {
    return this.#buffered > 0 || this.#prefix !== undefined || this.#discard > 0;
  }

  push(chunk: Buffer): void {
    if (this.#discard > 0) {
      const skip = Math.min(this.#discard, chunk.length);
      this.#discard -= skip;
      if (skip === chunk.length) return;
      chunk = chunk.subarray(skip);
    }
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
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
    // A payload that straddles chunks is copied once, when complete. Copying each chunk into a buffer allocated when
    // the header arrives measured no faster, and would let a peer make us allocate what it only declares.
    if (this.#buffered < prefix.payloadBytes) return undefined;
    const payload = prefix.payloadBytes === 0 ? emptyPayload : this.#take(prefix.payloadBytes);
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
    let filled = 0;
    while (filled < length) {
      const chunk = this.#chunks[0] as Buffer;
      const n = Math.min(chunk.length - this.#offset, length - filled);
      chunk.copy(out, filled, this.#offset, this.#offset + n);
      filled += n;
      this.#advance(n);
    }
    return out;
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
  #corked = false;
  readonly #uncork = () => {
    this.#corked = false;
    this.#socket.uncork();
  };

  constructor(socket: Socket) {
    this.#socket = socket;
  }

  /** Queues one frame; returns false when the socket's buffer is over its high-water mark (wait for 'drain'). */
  write(header: FrameHeader, payload: Uint8Array | undefined): boolean {
    const socket = this.#socket;
    if (socket.destroyed || socket.writableEnded) return false;
    if (!this.#corked) {
      this.#corked = true;
      socket.cork();
      process.nextTick(this.#uncork);
    }
    // Header and payload go out as separate buffers of one writev: copying even small payloads behind the header
    // measured slower than the extra iovec entry (a fresh allocation per frame, then GC).
    const payloadBytes = payload?.length ?? 0;
    const head = encodeFrameHead(header, payloadBytes);
    if (payload === undefined || payloadBytes === 0) return socket.write(head);
    socket.write(head);
    return socket.write(payload);
  }
}
