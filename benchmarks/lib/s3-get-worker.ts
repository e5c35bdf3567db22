/**
 * One process of the S3 load generator's GET phases (see `getPhase` in s3-load.ts): a closed loop of whole-object
 * GETs over the keys the PUT phase wrote, on its own keep-alive agent. It runs as a child process, not a thread, so
 * that it can start with glibc told to keep freed memory (`getProcessMalloc` in s3-load.ts): Node's HTTP client
 * copies every body chunk into a fresh Buffer, and with glibc's defaults those pages went back to the kernel and were
 * faulted and zeroed again for the next chunk (13.5 % of the machine's CPU under 4 MiB GETs, all of it in the
 * generator; 2026-11-24).
 * Over IPC: 'ready' out, the job in, 'warm' out after its warm-up, 'go' in, then the result out; it then waits to be
 * stopped (killed, or the channel closed).
 */
import { closedLoop, warmupSeconds } from './stats.js';
import { S3Requester, firstFailure, getOp, type GetWorkerJob, type GetWorkerResult, type ObjectGet } from './s3-load.js';
import { RawGetter } from './s3-raw-get.js';

function nextMessage(): Promise<unknown> {
  return new Promise((resolve) => process.once('message', resolve));
}

const send = (message: unknown) => new Promise<void>((resolve, reject) => process.send?.(message, (error: Error | null) => (error ? reject(error) : resolve())));

// A generator that went away (killed, or failed elsewhere) takes its GET processes with it.
process.once('disconnect', () => process.exit(1));
const jobMessage = nextMessage();
await send('ready');
const job = (await jobMessage) as GetWorkerJob;
// Plain http: sockets read into fixed buffers (s3-raw-get.ts: Node's client cost as much CPU per 4 MiB GET as the
// servers measured); https: Node's client.
const client = new URL(job.options.endpoint).protocol === 'http:' ? new RawGetter(job.options) : new S3Requester(job.options, job.inFlight);
const get: ObjectGet = client instanceof RawGetter ? (path) => client.get(path) : (path) => client.send('GET', path, '', undefined);
try {
  const op = getOp(get, job);
  if (job.warm && warmupSeconds > 0) await closedLoop(job.inFlight, { seconds: warmupSeconds }, op);
  const go = nextMessage();
  await send('warm');
  await go;
  const cpu = process.cpuUsage();
  const failures = firstFailure(op);
  const result = await closedLoop(job.inFlight, { seconds: job.seconds }, failures.op);
  const used = process.cpuUsage(cpu);
  const out: GetWorkerResult = {
    ops: result.ops,
    bytes: result.bytes,
    seconds: result.seconds,
    latenciesMs: result.latenciesMs,
    errors: result.errors,
    cpuMicros: used.user + used.system,
    ...(failures.first === undefined ? {} : { firstError: failures.first }),
  };
  await send(out);
} finally {
  client.close();
}
// Stays until the generator stops it: the generator reads this process's CPU ticks from /proc after the results are
// in, and an exited process has none (its GETs' CPU was then counted as the server's: "bench 20%" where the
// generator's own measure gave it twice that, 2026-11-25).
process.removeAllListeners('disconnect');
process.once('disconnect', () => process.exit(0));
