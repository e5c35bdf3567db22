/**
 * `npm run bench -- messenger`: the data-plane messenger against a plain node:net socket, same bytes, same run.
 *
 * Each case sends requests carrying a payload one way and gets a small reply back, with 16 requests in flight on one
 * connection over 127.0.0.1. The servers run in a worker thread so that client and server each have a core, as they
 * would on two hosts. The baseline is the least a socket can do for the same exchange: the connection announces the
 * message size once, then raw bytes flow and the server writes 16 bytes back per complete message; no framing, no
 * headers, no ids, no matching.
 */
import { once } from 'node:events';
import * as net from 'node:net';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { MessengerClient, MessengerServer } from '../src/net/index.js';

const workerRole = 'messenger-bench-server';
const inflight = 16;
const replyBytes = 16;
const warmupMs = 300;
/** Each side runs this long per round; rounds alternate the two sides so a busy machine slows both alike. */
const roundMs = 1000;
const rounds = 3;
const sizes = [4 * 1024, 4 * 1024 * 1024];

interface Ports {
  messenger: number;
  plain: number;
}

interface Result {
  ops: number;
  seconds: number;
}

interface Measured {
  opsPerSec: number;
  /** Busy time of the client and server threads (event-loop utilization, syscalls included) per op. */
  cpuMsPerOp: number;
}

/** The plain server: first 4 bytes of a connection give the message size; then 16 bytes back per message received. */
function startPlainServer(): Promise<number> {
  const server = net.createServer({ noDelay: true }, (socket) => {
    let size = 0;
    let pending = Buffer.alloc(0);
    let received = 0;
    socket.on('data', (chunk: Buffer) => {
      if (size === 0) {
        pending = Buffer.concat([pending, chunk]);
        if (pending.length < 4) return;
        size = pending.readUInt32BE(0);
        chunk = pending.subarray(4);
      }
      received += chunk.length;
      const complete = Math.floor(received / size);
      if (complete === 0) return;
      received -= complete * size;
      socket.write(Buffer.alloc(complete * replyBytes));
    });
    socket.on('error', () => {});
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)),
  );
}

async function serve(): Promise<void> {
  const messenger = new MessengerServer({ address: '127.0.0.1:0' }).onRequest(async () => ({}));
  await messenger.start();
  const ports: Ports = { messenger: messenger.port, plain: await startPlainServer() };
  parentPort?.on('message', () => parentPort?.postMessage(performance.eventLoopUtilization().active));
  parentPort?.postMessage(ports);
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === workerRole) await serve();

async function runPlain(port: number, size: number, durationMs: number): Promise<Result> {
  const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
  await once(socket, 'connect');
  const message = Buffer.alloc(size, 0xab);
  const announce = Buffer.alloc(4);
  announce.writeUInt32BE(size);
  socket.write(announce);
  const start = performance.now();
  const end = start + durationMs;
  let sent = 0;
  let done = 0;
  let replyBytesSeen = 0;
  const finished = new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      replyBytesSeen += chunk.length;
      const completed = Math.floor(replyBytesSeen / replyBytes);
      replyBytesSeen -= completed * replyBytes;
      done += completed;
      const stillOpen = performance.now() < end;
      for (let i = 0; i < completed && stillOpen; i++) {
        socket.write(message);
        sent++;
      }
      if (done === sent) resolve();
    });
  });
  for (let i = 0; i < inflight; i++) {
    socket.write(message);
    sent++;
  }
  await finished;
  const seconds = (performance.now() - start) / 1000;
  socket.destroy();
  return { ops: done, seconds };
}

async function runMessenger(port: number, size: number, durationMs: number): Promise<Result> {
  const client = new MessengerClient({ address: `127.0.0.1:${port}` });
  const payload = Buffer.alloc(size, 0xab);
  const header = new Uint8Array(0);
  await client.request('bench', header, undefined, { timeoutMs: 10_000 });
  const start = performance.now();
  const end = start + durationMs;
  let done = 0;
  const loop = async () => {
    while (performance.now() < end) {
      await client.request('bench', header, payload, { timeoutMs: 60_000 });
      done++;
    }
  };
  await Promise.all(Array.from({ length: inflight }, loop));
  const seconds = (performance.now() - start) / 1000;
  client.close();
  return { ops: done, seconds };
}

function formatSize(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${bytes / 1024 / 1024} MiB` : `${bytes / 1024} KiB`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

export async function run(): Promise<void> {
  const worker = new Worker(new URL(import.meta.url), { workerData: { role: workerRole } });
  const serverBusyMs = async (): Promise<number> => {
    worker.postMessage('elu');
    const [active] = (await once(worker, 'message')) as [number];
    return active;
  };
  const measure = async (go: () => Promise<Result>): Promise<Measured> => {
    const server0 = await serverBusyMs();
    const client0 = performance.eventLoopUtilization().active;
    const result = await go();
    const busyMs = performance.eventLoopUtilization().active - client0 + (await serverBusyMs()) - server0;
    return { opsPerSec: result.ops / result.seconds, cpuMsPerOp: busyMs / result.ops };
  };
  try {
    const [ports] = (await once(worker, 'message')) as [Ports];
    const lines: string[] = [];
    for (const size of sizes) {
      await runPlain(ports.plain, size, warmupMs);
      await runMessenger(ports.messenger, size, warmupMs);
      const plain: Measured[] = [];
      const messenger: Measured[] = [];
      for (let round = 0; round < rounds; round++) {
        plain.push(await measure(() => runPlain(ports.plain, size, roundMs)));
        messenger.push(await measure(() => runMessenger(ports.messenger, size, roundMs)));
      }
      const plainOps = median(plain.map((m) => m.opsPerSec));
      const messengerOps = median(messenger.map((m) => m.opsPerSec));
      const plainCpu = median(plain.map((m) => m.cpuMsPerOp));
      const messengerCpu = median(messenger.map((m) => m.cpuMsPerOp));
      lines.push(
        [
          formatSize(size).padEnd(8),
          plainOps.toFixed(0).padStart(8),
          ((plainOps * size) / 1e6).toFixed(1).padStart(8),
          messengerOps.toFixed(0).padStart(10),
          ((messengerOps * size) / 1e6).toFixed(1).padStart(10),
          `${(messengerOps / plainOps).toFixed(2)}x`.padStart(7),
          `${(plainCpu * 1000).toFixed(0)} / ${(messengerCpu * 1000).toFixed(0)}`.padStart(16),
          `${(plainCpu / messengerCpu).toFixed(2)}x`.padStart(9),
        ].join(' '),
      );
    }
    process.stdout.write(
      [
        `request with payload -> ${replyBytes}-byte reply, ${inflight} in flight on one connection, 127.0.0.1, servers in a worker thread`,
        `median of ${rounds} alternating rounds of ${roundMs} ms; cpu = busy time of both threads per op (plain / messenger)`,
        [
          'size'.padEnd(8),
          'plain/s'.padStart(8),
          'MB/s'.padStart(8),
          'msgr/s'.padStart(10),
          'MB/s'.padStart(10),
          'ratio'.padStart(7),
          'cpu us/op'.padStart(16),
          'cpu ratio'.padStart(9),
        ].join(' '),
        ...lines,
        'ratio: messenger ops/s over plain ops/s; cpu ratio: plain cpu/op over messenger cpu/op (1.00x = as cheap)',
        'command: npm run bench -- messenger',
        '',
      ].join('\n'),
    );
  } finally {
    await worker.terminate();
  }
}
