// Shared by the interop scripts: one ioredis connection per role on the test's Redis.
'use strict';

const IORedis = require('ioredis');

// The queue this system uses (quickdapp.queue.queues.QUEUE_NAME).
const QUEUE_NAME = 'jobs';

function redisUrl() {
  const url = process.env.REDIS_URL;
  if (!url) {
    throw new Error('REDIS_URL is not set');
  }
  return url;
}

// BullMQ requires maxRetriesPerRequest null on connections that block (Worker, QueueEvents).
function connect() {
  return new IORedis(redisUrl(), { maxRetriesPerRequest: null });
}

// The fields of a job that the tests read, the same shape for every script.
function describeJob(job, state) {
  return {
    id: job.id,
    name: job.name,
    data: job.data,
    opts: job.opts,
    priority: job.priority,
    delay: job.delay,
    attemptsMade: job.attemptsMade,
    attemptsStarted: job.attemptsStarted,
    timestamp: job.timestamp,
    processedOn: job.processedOn ?? null,
    finishedOn: job.finishedOn ?? null,
    processedBy: job.processedBy ?? null,
    failedReason: job.failedReason ?? null,
    returnvalue: job.returnvalue ?? null,
    repeatJobKey: job.repeatJobKey ?? null,
    state: state ?? null,
  };
}

module.exports = { QUEUE_NAME, connect, describeJob, redisUrl };
