/**
 * One extra thread of the S3 load generator's GET phases (see `getThreads` in s3-load.ts): the same closed loop of
 * whole-object GETs over the keys the PUT phase wrote, on its own keep-alive agent, posted back as one result.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { closedLoop, warmupSeconds } from './stats.js';
import { S3Requester, errorText, getOp, type GetWorkerJob, type GetWorkerResult } from './s3-load.js';

const job = workerData as GetWorkerJob;
const s3 = new S3Requester(job.options, job.inFlight);
let firstError: string | undefined;
const op = getOp(s3, job);
try {
  if (job.warm && warmupSeconds > 0) await closedLoop(job.inFlight, { seconds: warmupSeconds }, op);
  const result = await closedLoop(job.inFlight, { seconds: job.seconds }, async (i) => {
    try {
      return await op(i);
    } catch (error) {
      firstError ??= errorText(error);
      throw error;
    }
  });
  const out: GetWorkerResult = { ops: result.ops, bytes: result.bytes, seconds: result.seconds, latenciesMs: result.latenciesMs, errors: result.errors, ...(firstError === undefined ? {} : { firstError }) };
  parentPort?.postMessage(out);
} finally {
  s3.close();
}
