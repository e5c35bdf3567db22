/**
 * Socket reads into buffers the frame parser chooses (Node's `onread` option) instead of a fresh 64 KiB chunk per
 * read. A large payload is then read by the kernel straight into its own buffer: no chunk is allocated and nothing is
 * copied again. Why it matters: every chunk is memory outside V8's heap, and V8 starts a full collection each time
 * such memory grows by tens of MiB; an OSD receiving 4 MiB writes ran a full collection every ~150 ms, with marking
 * and sweeping taking about a third of the machine's CPU. On one connection over loopback, in-place reads cut the
 * receiver's CPU per GiB from ~730 to ~430 ms.
 *
 * Node offers `onread` to `net.connect` only. For sockets a server accepts, the same per-socket fields are set
 * through the symbols Node keys them by (found by name on a socket made with `onread`, so nothing is guessed);
 * when a Node version lacks them, reads fall back to 'data' events and `push`. Both paths feed one FrameParser.
 */
import net from 'node:net';
import type { FrameParser } from './messenger-frame.js';

/** What a connection does after bytes arrive (parse and dispatch frames). */
export type BytesArrived = () => void;

function onread(parser: FrameParser, arrived: BytesArrived): net.OnReadOpts {
  return {
    buffer: () => parser.readTarget(),
    callback: (bytes: number, target: Uint8Array) => {
      parser.received(target as Buffer, bytes);
      arrived();
      // Reading stops only through socket.pause(): the connection decides, after looking at what it has.
      return true;
    },
  };
}

/** Connects like `net.connect`, with reads going where `parser` says. */
export function connectReading(options: net.TcpNetConnectOpts, parser: FrameParser, arrived: BytesArrived): net.Socket {
  return net.connect({ ...options, onread: onread(parser, arrived) });
}

interface ReadSymbols {
  buffer: symbol;
  generator: symbol;
  callback: symbol;
}

let symbols: ReadSymbols | null | undefined;

function readSymbols(): ReadSymbols | null {
  if (symbols !== undefined) return symbols;
  const probe = new net.Socket({ onread: { buffer: () => Buffer.alloc(1), callback: () => true } });
  const byName = new Map(Object.getOwnPropertySymbols(probe).map((s) => [s.description, s]));
  probe.destroy();
  const buffer = byName.get('kBuffer');
  const generator = byName.get('kBufferGen');
  const callback = byName.get('kBufferCb');
  symbols = buffer && generator && callback ? { buffer, generator, callback } : null;
  return symbols;
}

interface UserBufferHandle {
  useUserBuffer(buffer: Uint8Array): void;
}

/**
 * Starts reading an accepted socket (created paused: the server has `pauseOnConnect`) into `parser`, in place when
 * this Node allows it. Returns whether reads go in place.
 */
export function readAccepted(socket: net.Socket, parser: FrameParser, arrived: BytesArrived): boolean {
  const found = readSymbols();
  const handle = (socket as unknown as { _handle?: Partial<UserBufferHandle> | null })._handle;
  if (found !== null && handle && typeof handle.useUserBuffer === 'function') {
    const options = onread(parser, arrived);
    const first = parser.readTarget();
    const fields = socket as unknown as Record<symbol, unknown>;
    fields[found.buffer] = first;
    fields[found.generator] = options.buffer;
    fields[found.callback] = options.callback;
    handle.useUserBuffer(first);
    socket.resume();
    return true;
  }
  socket.on('data', (chunk: Buffer) => {
    parser.push(chunk);
    arrived();
  });
  socket.resume();
  return false;
}
