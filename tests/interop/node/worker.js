// A Node BullMQ Worker on the queue `jobs` of REDIS_URL, as a Node service beside this system
// would run one. It reports what it sees on stdout, one JSON object a line:
//   {"event": "ready", "name": ...}                       once it takes jobs
//   {"event": "start", "at": ms, "job": {...}}            each attempt, as the processor sees it
//   {"event": "failed" | "completed", "at": ms, "job": {...}}
//
// The processor reads the payload this system writes, {userId, data}: it fails while
// `data.failures` is more than the attempts already made (like the test job type `flaky`)
// and sleeps `data.ms` when given, then returns {ranOn: "node", name}.
//
// Arguments: --name NAME (Worker name; none: unnamed), --concurrency N (default 1).
// SIGTERM or SIGINT: close (active jobs finish), then exit 0.
'use strict';

const { parseArgs } = require('node:util');
const { Worker } = require('bullmq');
const { QUEUE_NAME, connect, describeJob } = require('./connection');

const { values } = parseArgs({
  options: {
    name: { type: 'string' },
    concurrency: { type: 'string', default: '1' },
  },
});

function report(event, fields) {
  process.stdout.write(`${JSON.stringify({ event, at: Date.now(), ...fields })}\n`);
}

async function processor(job) {
  report('start', { job: describeJob(job, 'active') });
  const data = (job.data && job.data.data) || {};
  if (Number.isInteger(data.ms)) {
    await new Promise((resolve) => setTimeout(resolve, data.ms));
  }
  if (Number.isInteger(data.failures) && job.attemptsMade < data.failures) {
    throw new Error(`node flaky failure (attempt ${job.attemptsMade + 1})`);
  }
  return { ranOn: 'node', name: job.name };
}

async function main() {
  const options = {
    connection: connect(),
    concurrency: Number(values.concurrency),
    autorun: false,
  };
  if (values.name) {
    options.name = values.name;
  }
  const worker = new Worker(QUEUE_NAME, processor, options);
  worker.on('completed', (job) => report('completed', { job: describeJob(job, 'completed') }));
  worker.on('failed', (job) => {
    if (job) {
      report('failed', { job: describeJob(job, 'failed') });
    }
  });
  worker.on('error', (err) => process.stderr.write(`worker error: ${err.stack || err}\n`));

  let closing = null;
  const close = () => {
    closing = closing || worker.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', close);
  process.on('SIGINT', close);

  const running = worker.run();
  // Ready includes the blocking connection, which ioredis names (CLIENT SETNAME) as it
  // connects: from here on getWorkers() lists this Worker.
  await worker.waitUntilReady();
  report('ready', { name: values.name ?? null });
  await running;
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
