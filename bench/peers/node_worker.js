// Node BullMQ worker for bench/compare.py: node node_worker.js PORT CONCURRENCY
// Prints "ready" once connected. Notes when each `stamp` job starts in
// $BENCH_STAMP_DIR/<pid>.txt ("job_id epoch_ms" lines, one write each, as bench/stamps.py does).
const fs = require('fs');
const path = require('path');
const { Worker } = require('bullmq');

const [port, concurrency] = process.argv.slice(2).map(Number);
const stamps = fs.openSync(path.join(process.env.BENCH_STAMP_DIR, `${process.pid}.txt`), 'a');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Wall-clock ms with a fraction, comparable with Python's time.time(): timeOrigin + now() drifts
// from the wall clock (~0.2 ms/s seen here), so it is re-anchored on a Date.now() tick each second.
let anchorWall = 0;
let anchorPerf = 0;
function anchor() {
  const start = Date.now();
  let now;
  while ((now = Date.now()) === start); // at most 1 ms, once a second
  anchorWall = now;
  anchorPerf = performance.now();
}
anchor();
setInterval(anchor, 1000).unref();
const wallMs = () => anchorWall + (performance.now() - anchorPerf);
const worker = new Worker('jobs', async (job) => {
  if (job.name === 'stamp') {
    fs.writeSync(stamps, `${job.id} ${wallMs().toFixed(3)}\n`);
  } else if (job.name === 'sleep') {
    await sleep(job.data.data.ms);
  }
  return null;
}, { connection: { host: '127.0.0.1', port }, concurrency });

worker.waitUntilReady().then(() => console.log('ready'));
process.on('SIGTERM', () => process.exit(0));
