import { createServer } from 'node:net';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A free port for a monitor and a base port for OSDs (the next few ports assumed free, away from common ranges). */
export async function freePortPair(): Promise<[number, number]> {
  return [await freePort(), 30_000 + ((await freePort()) % 20_000)];
}
