// SPDX-License-Identifier: LGPL-2.1-or-later
// The ONNX Runtime peer for clip-bench: times onnxruntime-node (CPU execution provider, MLAS
// kernels) on the image tower exported by export_onnx.py, batch 1, as clip-bench times ours
// (median ms/image of N runs after warm-up).
//
//   NODE_PATH=DIR/node_modules node bench/ort-peer/bench_ort.js ONNX_DIR THREADS [reps=10] [warmup=2]
//
// Prints one JSON line. Checks ORT's output against the PyTorch output saved by the export
// (max_abs_diff_vs_torch). Before timing, and again after a repetition during which other
// processes used the CPU, it waits for the machine to be quiet (at most
// CLIPCLASSIFY_BENCH_QUIET_WAIT_S seconds, default 30, each time); foreign_cpu_s_total says
// how much CPU other processes used during the repetitions (a noisy run says so).
const ort = require('onnxruntime-node');
const fs = require('fs');
const path = require('path');

const dir = process.argv[2];
const threads = parseInt(process.argv[3] || '1', 10);
const reps = parseInt(process.argv[4] || '10', 10);
const warmup = parseInt(process.argv[5] || '2', 10);
const maxWait = parseFloat(process.env.CLIPCLASSIFY_BENCH_QUIET_WAIT_S || '30');
if (!dir || !(threads >= 1) || !(reps >= 1) || !(warmup >= 0)) {
  console.error('usage: node bench_ort.js ONNX_DIR THREADS [reps] [warmup]');
  process.exit(2);
}

// --- load guard: CPU time used by the whole machine (/proc/stat) minus our own ---
const TCK = 100;
function sysCpu() {
  const v = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  return { busy: (v[0] + v[1] + v[2] + v[5] + v[6]) / TCK, steal: v[7] / TCK };
}
function sleepMs(ms) { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); }
let neverQuiet = 0;
function waitQuiet() {
  const t0 = Date.now();
  for (;;) {
    const a = sysCpu().busy; sleepMs(1000); const b = sysCpu().busy;
    if (b - a < 0.05) break;
    if ((Date.now() - t0) / 1e3 > maxWait) { neverQuiet++; break; }
  }
  return (Date.now() - t0) / 1e3 - 1;
}
const isClean = (foreign, wallS) => foreign < Math.max(0.03, 0.05 * wallS);

function readF32(f) { const b = fs.readFileSync(f); return new Float32Array(b.buffer, b.byteOffset, b.length / 4); }

async function main() {
  const opts = {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  };
  const t0 = Date.now();
  const sess = await ort.InferenceSession.create(path.join(dir, 'clip_vision.onnx'), opts);
  const loadMs = Date.now() - t0;
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'vision.json'), 'utf8'));
  const data = readF32(path.join(dir, 'vision_in_b1.f32'));
  const ref = readF32(path.join(dir, 'vision_out_b1.f32'));
  const size = meta.image_size;
  const feeds = { pixel_values: new ort.Tensor('float32', data, [1, 3, size, size]) };
  let out;
  for (let i = 0; i < warmup; i++) out = await sess.run(feeds);
  let waited = waitQuiet();
  const all = [], cpus = [], walls = [];
  let foreignTotal = 0, stealTotal = 0;
  while (walls.length < reps && all.length < 3 * reps) {
    const s0 = sysCpu();
    const c0 = process.cpuUsage();
    const a = process.hrtime.bigint();
    out = await sess.run(feeds);
    const w = Number(process.hrtime.bigint() - a) / 1e6;
    const c = process.cpuUsage(c0);
    const s1 = sysCpu();
    const own = (c.user + c.system) / 1e6;
    const foreign = Math.max(0, (s1.busy - s0.busy) - own);
    foreignTotal += foreign; stealTotal += s1.steal - s0.steal;
    all.push(w);
    cpus.push(own * 1e3 / w);
    if (isClean(foreign, w / 1e3)) walls.push(w); else waited += waitQuiet();
  }
  const clean = walls.length;
  if (clean === 0) walls.push(...all);
  const sorted = [...walls].sort((x, y) => x - y);
  const h = sorted.length >> 1;
  const med = sorted.length % 2 ? sorted[h] : (sorted[h - 1] + sorted[h]) / 2;
  const cs = [...cpus].sort((x, y) => x - y);
  const o = out[sess.outputNames[0]].data;
  let maxdiff = 0;
  for (let i = 0; i < ref.length; i++) maxdiff = Math.max(maxdiff, Math.abs(ref[i] - o[i]));
  const r3 = (x) => Math.round(x * 1000) / 1000;
  console.log(JSON.stringify({
    peer: 'onnxruntime-node ' + require('onnxruntime-node/package.json').version,
    threads, vision_ms: r3(med), min_ms: r3(sorted[0]), max_ms: r3(sorted[sorted.length - 1]),
    vision_gflops: Math.round(meta.vision_gflop / (med / 1e3) * 10) / 10,
    reps_clean: clean, reps_total: all.length, foreign_cpu_s_total: r3(foreignTotal),
    steal_s_total: r3(stealTotal), waited_quiet_s: Math.round(waited), never_quiet: neverQuiet,
    cpu_over_wall: r3(cs[cs.length >> 1]), load_ms: loadMs, max_abs_diff_vs_torch: maxdiff,
  }));
}
main().catch((e) => { console.error('bench_ort.js FAILED:', e); process.exit(1); });
