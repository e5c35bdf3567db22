/**
 * One extra thread of the S3 load generator's GET phases (see `getThreads` in s3-load.ts): the same closed loop of
 * whole-object GETs over the keys the PUT phase wrote, on its own keep-alive agent, posted back as one result.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { closedLoop, warmupSeconds } from './stats.js';
import { S3Requester, firstFailure, getOp, type GetWorkerJob, type GetWorkerResult } from './s3-load.js';

const job = workerData as GetWorkerJob;
const s3 = new S3Requester(job.options, job.inFlight);
const op = getOp(s3, job);
try {
  if (job.warm && warmupSeconds > 0) await closedLoop(job.inFlight, { seconds: warmupSeconds }, op);
  const failures = firstFailure(op);
  const result = await closedLoop(job.inFlight, { seconds: job.seconds }, failures.op);
  const out: GetWorkerResult = { ops: result.ops, bytes: result.bytes, seconds: result.seconds, latenciesMs: result.latenciesMs, errors: result.errors, ...(failures.first === undefined ? {} : { firstError: failures.first }) };
  parentPort?.postMessage(out);
} finally {
  s3.close();
}
