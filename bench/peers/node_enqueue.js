// Node BullMQ enqueue throughput for bench/compare.py: node node_enqueue.js PORT MODE N JOB
// (MODE: one | bulk; JOB: {"data": ..., "opts": ...}, the job this system's submit_job makes,
// each added with its own uuid as id, as submit_job does); prints jobs/s.
const { randomUUID } = require('crypto');
const { Queue } = require('bullmq');

(async () => {
  const [port, mode, n] = [Number(process.argv[2]), process.argv[3], Number(process.argv[4])];
  const { data, opts } = JSON.parse(process.argv[5]);
  const withId = () => ({ ...opts, jobId: randomUUID().replaceAll('-', '') });
  const queue = new Queue('jobs', { connection: { host: '127.0.0.1', port } });
  await queue.waitUntilReady();
  await queue.add('echo', data, withId());  // connections open
  const started = performance.now();
  if (mode === 'one') {
    for (let i = 0; i < n; i++) await queue.add('echo', data, withId());
  } else {
    for (let i = 0; i < n; i += 1000) {
      const batch = [];
      for (let j = i; j < Math.min(n, i + 1000); j++) batch.push({ name: 'echo', data, opts: withId() });
      await queue.addBulk(batch);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(JSON.stringify({ jobs_per_s: n / seconds }));
  await queue.close();
})();
