// Runs BullMQ calls as a Node service would, on the queue `jobs` of REDIS_URL.
//
// stdin: a JSON array of operations, run in order; stdout: a JSON array of their results.
// An operation that throws ends the script with exit code 1 and names the operation on stderr.
'use strict';

const { Queue, QueueEvents } = require('bullmq');
const { QUEUE_NAME, connect, describeJob } = require('./connection');

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '[]');
}

class Operations {
  constructor() {
    // BullMQ duplicates a connection it must block on and leaves the given one open: close
    // every one of them, or the script never exits.
    this.connections = [connect()];
    this.queue = new Queue(QUEUE_NAME, { connection: this.connections[0] });
    this.events = null;
  }

  async add({ name, data, opts }) {
    const job = await this.queue.add(name, data, opts);
    return { id: job.id };
  }

  async getJob({ id }) {
    const job = await this.queue.getJob(id);
    return job ? describeJob(job, await job.getState()) : null;
  }

  // Resolves with the outcome as Node sees it: the return value, or the reason the job failed.
  async waitUntilFinished({ id, timeoutMs }) {
    const job = await this.queue.getJob(id);
    if (!job) {
      throw new Error(`no job ${id}`);
    }
    try {
      const returnvalue = await job.waitUntilFinished(await this.queueEvents(), timeoutMs);
      return { state: 'completed', returnvalue };
    } catch (err) {
      const state = await job.getState();
      if (state !== 'failed') {
        throw new Error(`job ${id} did not finish within ${timeoutMs} ms (state ${state}): ${err.message}`);
      }
      return { state: 'failed', failedReason: err.message };
    }
  }

  async upsertJobScheduler({ key, repeat, template }) {
    await this.queue.upsertJobScheduler(key, repeat, template);
    return this.queue.getJobScheduler(key);
  }

  async getJobSchedulers() {
    return this.queue.getJobSchedulers(0, -1, true);
  }

  async removeJobScheduler({ key }) {
    return this.queue.removeJobScheduler(key);
  }

  async getWorkers() {
    return this.queue.getWorkers();
  }

  async getJobCounts({ states }) {
    return this.queue.getJobCounts(...(states ?? []));
  }

  // Replays the stream from its start: the tests' Redis is emptied before each test, and a
  // replay cannot miss an event that happened before the first read.
  async queueEvents() {
    if (!this.events) {
      const connection = connect();
      this.connections.push(connection);
      this.events = new QueueEvents(QUEUE_NAME, { connection, lastEventId: '0-0' });
      await this.events.waitUntilReady();
    }
    return this.events;
  }

  async close() {
    if (this.events) {
      await this.events.close();
    }
    await this.queue.close();
    await Promise.all(this.connections.map((connection) => connection.quit()));
  }
}

async function main() {
  const operations = await readStdin();
  const ops = new Operations();
  const results = [];
  try {
    for (const { op, ...args } of operations) {
      if (typeof ops[op] !== 'function' || op === 'close' || op === 'queueEvents') {
        throw new Error(`unknown operation ${JSON.stringify(op)}`);
      }
      try {
        results.push(await ops[op](args));
      } catch (err) {
        err.message = `${op} ${JSON.stringify(args)}: ${err.message}`;
        throw err;
      }
    }
  } finally {
    await ops.close();
  }
  process.stdout.write(JSON.stringify(results));
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
