// Node BullMQ worker for bench/engine_throughput.py: node worker.js PORT CONCURRENCY RECORD(0|1)
// Prints "ready" once connected; on SIGTERM prints one JSON line (CPU seconds, job starts) and exits.
const { Worker } = require('bullmq');

const [port, concurrency, record] = process.argv.slice(2).map(Number);
const starts = {};
const worker = new Worker('jobs', async (job) => {
  if (record) starts[job.id] = performance.timeOrigin + performance.now();
  return null;
}, { connection: { host: '127.0.0.1', port }, concurrency });

let cpuAtReady = null;
worker.waitUntilReady().then(() => {
  cpuAtReady = process.cpuUsage();
  console.log('ready');
});
process.on('SIGTERM', async () => {
  const cpu = process.cpuUsage(cpuAtReady);  // CPU since ready: start-up not counted
  // Exit only once the line is written: a piped stdout is asynchronous in Node.
  process.stdout.write(JSON.stringify({ cpu_s: (cpu.user + cpu.system) / 1e6, starts }) + '\n',
    () => process.exit(0));
});
