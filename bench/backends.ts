/**
 * `npm run bench -- backends` — what each available TensorFlow.js backend computes per second here:
 * conv2d, depthwise and matMul GFLOP/s (and the share of the machine's FP32 peak), MobileNetV2
 * forward and train-step images/s, and numTensors before and after. WebAssembly runs on one thread
 * (tfjs cannot start its wasm threads in Node) and as a pool of worker threads (src/backends/parallel.ts),
 * both in one run so their ratio is fair; the pure-JS cpu backend gets small sizes only.
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { Bench } from 'tinybench';
import { completed } from './completed.js';
import { addMeasuredCase, busyCores, MACHINE_PEAK_GFLOPS, MACHINE_PEAK_TEXT } from './cpu.js';
import { formatTable } from './table.js';
import { useBackend, type BackendChoice } from '../src/backend.js';
import { ParallelModel } from '../src/backends/parallel.js';
import { mobileNetV2 } from '../src/models/mobilenetv2.js';

interface Sizes {
  conv: { x: [number, number, number, number]; filter: [number, number, number, number] };
  depthwise: { x: [number, number, number, number]; filter: [number, number, number, number] };
  matMul: number;
  mobilenet: { alpha: number; size: number; batch: number };
  /**
   * Train-step batch, 0 for none (too slow on the pure-JS backend). A MobileNetV2-0.5 step at 224 px
   * holds ~300 MB per image (tfjs keeps the step's activations and gradients), and the wasm heap
   * stops at 4 GB: batch 16 already runs out of it.
   */
  trainBatch: number;
}

const FULL: Sizes = {
  conv: { x: [32, 112, 112, 32], filter: [3, 3, 32, 64] },
  depthwise: { x: [32, 112, 112, 64], filter: [3, 3, 64, 1] },
  matMul: 1024,
  mobilenet: { alpha: 0.5, size: 224, batch: 32 },
  trainBatch: 8,
};
const SMALL: Sizes = {
  conv: { x: [1, 56, 56, 32], filter: [3, 3, 32, 64] },
  depthwise: { x: [2, 56, 56, 64], filter: [3, 3, 64, 1] },
  matMul: 256,
  mobilenet: { alpha: 0.5, size: 224, batch: 2 },
  trainBatch: 0,
};
const QUICK: Sizes = {
  conv: { x: [2, 16, 16, 8], filter: [3, 3, 8, 8] },
  depthwise: { x: [2, 16, 16, 8], filter: [3, 3, 8, 1] },
  matMul: 64,
  mobilenet: { alpha: 0.35, size: 32, batch: 4 },
  trainBatch: 4,
};

export interface BackendRow {
  setup: string;
  conv2d: number;
  depthwise: number;
  matMul: number;
  forward: number;
  /** Cores the forward pass kept busy (process CPU / wall time); below the workers' count means others took the rest. */
  forwardCores: number;
  train: number | null;
  tensorsBefore: number;
  tensorsAfter: number;
  sizes: Sizes;
}

const convFlops = (s: Sizes['conv']) => 2 * s.x[0] * s.x[1] * s.x[2] * s.filter[0] * s.filter[1] * s.filter[2] * s.filter[3];
const depthwiseFlops = (s: Sizes['depthwise']) => 2 * s.x[0] * s.x[1] * s.x[2] * s.filter[0] * s.filter[1] * s.filter[2] * s.filter[3];

const WARMUP_CALLS = 3;

interface Timing {
  seconds: number;
  /** Process CPU seconds (all threads, workers included) per wall second: how many cores it got. */
  busyCores: number;
}

/**
 * Median seconds per call of each case, timed in one tinybench run, and the cores each kept busy.
 * Three warm-up calls: a worker's first batches grow its WebAssembly memory and compile its code.
 */
async function timeCases(cases: Array<[string, () => unknown]>, iterations: number): Promise<Timing[]> {
  const bench = new Bench({ time: 0, iterations, warmupIterations: WARMUP_CALLS, warmupTime: 0 });
  const usage = cases.map(([name, run]) => addMeasuredCase(bench, name, run));
  await bench.run();
  return bench.tasks.map((task, i) => ({ seconds: completed(task).latency.p50 / 1000, busyCores: busyCores(usage[i]!) }));
}

const random = (shape: number[]) => tf.randomUniform(shape, -1, 1, 'float32', 1);
const single = (layer: tfl.layers.Layer, inputShape: number[]) => tfl.sequential({ layers: [tfl.layers.inputLayer({ inputShape }), layer] });

/** One backend on the main thread: direct ops, and the model's forward and train step. */
async function mainThread(setup: string, sizes: Sizes, iterations: number): Promise<BackendRow> {
  const tensorsBefore = tf.memory().numTensors;
  const { conv, depthwise, mobilenet } = sizes;
  const [x, f, dx, df, a, b] = [random(conv.x), random(conv.filter), random(depthwise.x), random(depthwise.filter), random([sizes.matMul, sizes.matMul]), random([sizes.matMul, sizes.matMul])];
  const model = mobileNetV2({ alpha: mobilenet.alpha, inputSize: mobilenet.size, includeTop: true, classes: 10 });
  const optimizer = tf.train.sgd(1e-3);
  model.compile({ optimizer, loss: 'categoricalCrossentropy' });
  const images = random([mobilenet.batch, mobilenet.size, mobilenet.size, 3]);
  const trainImages = tf.slice(images, 0, Math.min(sizes.trainBatch, mobilenet.batch));
  const labels = tf.tidy(() => tf.oneHot(tf.tensor1d(Array.from({ length: trainImages.shape[0] }, (_, i) => i % 10), 'int32'), 10));
  const read = (t: tf.Tensor) => {
    t.dataSync();
    t.dispose();
  };
  const [convT, depthwiseT, matMulT, forwardT, trainT] = await timeCases(
    [
      ['conv2d', () => read(tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, 'same'))],
      ['depthwise', () => read(tf.depthwiseConv2d(dx as tf.Tensor4D, df as tf.Tensor4D, 1, 'same'))],
      ['matMul', () => read(tf.matMul(a, b))],
      ['forward', () => read(model.predict(images) as tf.Tensor)],
      ...(sizes.trainBatch > 0 ? [['train step', () => model.trainOnBatch(trainImages, labels)] as [string, () => unknown]] : []),
    ],
    iterations,
  );
  tf.dispose([x, f, dx, df, a, b, images, trainImages, labels]);
  model.dispose();
  optimizer.dispose();
  return {
    setup,
    conv2d: convFlops(conv) / convT!.seconds / 1e9,
    depthwise: depthwiseFlops(depthwise) / depthwiseT!.seconds / 1e9,
    matMul: (2 * sizes.matMul ** 3) / matMulT!.seconds / 1e9,
    forward: mobilenet.batch / forwardT!.seconds,
    forwardCores: forwardT!.busyCores,
    train: trainT === undefined ? null : trainImages.shape[0] / trainT.seconds,
    tensorsBefore,
    tensorsAfter: tf.memory().numTensors,
    sizes,
  };
}

/**
 * The same work split over a pool of wasm workers: each op as a one-layer model (conv2d and
 * depthwise without bias, matMul as a dense layer on 1024 rows), the batch split between workers.
 * Training stays on one thread: only inference is parallel.
 */
async function workerPool(workers: number, sizes: Sizes, iterations: number, withMainThread = false): Promise<BackendRow> {
  const tensorsBefore = tf.memory().numTensors;
  const { conv, depthwise, mobilenet } = sizes;
  const models = [
    single(tfl.layers.conv2d({ filters: conv.filter[3], kernelSize: [conv.filter[0], conv.filter[1]], padding: 'same', useBias: false }), conv.x.slice(1)),
    single(tfl.layers.depthwiseConv2d({ kernelSize: [depthwise.filter[0], depthwise.filter[1]], depthMultiplier: depthwise.filter[3], padding: 'same', useBias: false }), depthwise.x.slice(1)),
    single(tfl.layers.dense({ units: sizes.matMul, useBias: false }), [sizes.matMul]),
    mobileNetV2({ alpha: mobilenet.alpha, inputSize: mobilenet.size, includeTop: true, classes: 10 }),
  ];
  const inputs = [random(conv.x), random(depthwise.x), random([sizes.matMul, sizes.matMul]), random([mobilenet.batch, mobilenet.size, mobilenet.size, 3])];
  const pools: ParallelModel[] = [];
  let timings: Timing[];
  try {
    for (const model of models) pools.push(await ParallelModel.create(model, withMainThread ? { workers: workers - 1, mainThread: true } : { workers }));
    timings = await timeCases(
      pools.map((pool, i) => [`pool ${i}`, async () => (await pool.predict(inputs[i]!)).dispose()]),
      iterations,
    );
  } finally {
    await Promise.all(pools.map((pool) => pool.dispose()));
    tf.dispose(inputs);
    for (const model of models) model.dispose();
  }
  return {
    setup: withMainThread ? `wasm, this thread + ${workers - 1} worker${workers > 2 ? 's' : ''}` : `wasm, ${workers} workers`,
    conv2d: convFlops(conv) / timings[0]!.seconds / 1e9,
    depthwise: depthwiseFlops(depthwise) / timings[1]!.seconds / 1e9,
    matMul: (2 * sizes.matMul ** 3) / timings[2]!.seconds / 1e9,
    forward: mobilenet.batch / timings[3]!.seconds,
    forwardCores: timings[3]!.busyCores,
    train: null,
    tensorsBefore,
    tensorsAfter: tf.memory().numTensors,
    sizes,
  };
}

const shape = (s: number[]) => s.join('×');
const gflops = (value: number) => `${value.toFixed(1)} (${((100 * value) / MACHINE_PEAK_GFLOPS).toFixed(0)}%)`;

export function formatBackendTable(rows: BackendRow[]): string {
  const head = ['setup', 'conv2d GFLOP/s', 'depthwise GFLOP/s', 'matMul GFLOP/s', 'MNv2 fwd img/s', 'fwd cores busy', 'MNv2 train img/s', 'numTensors before→after'];
  const cells = rows.map((r) => [
    r.setup,
    gflops(r.conv2d),
    gflops(r.depthwise),
    gflops(r.matMul),
    r.forward.toFixed(1),
    r.forwardCores.toFixed(2),
    r.train === null ? '—' : r.train.toFixed(2),
    `${r.tensorsBefore}→${r.tensorsAfter}`,
  ]);
  const sizes = [...new Set(rows.map((r) => r.sizes))].map(
    (s) =>
      `  ${rows.filter((r) => r.sizes === s).map((r) => r.setup).join(', ')}: conv2d ${shape(s.conv.x)} * ${shape(s.conv.filter)}, depthwise ${shape(s.depthwise.x)} * ${shape(s.depthwise.filter)}, matMul ${s.matMul}², MobileNetV2-${s.mobilenet.alpha} at ${s.mobilenet.size} px, batch ${s.mobilenet.batch}`,
  );
  return [formatTable(head, cells), `(%: share of the ${MACHINE_PEAK_TEXT})`, 'sizes:', ...sizes].join('\n');
}

export async function main(argv: string[]): Promise<BackendRow[]> {
  const { values } = parseArgs({ args: argv, options: { quick: { type: 'boolean' }, iterations: { type: 'string' }, workers: { type: 'string' } }, allowPositionals: true });
  const iterations = Number(values.iterations ?? (values.quick ? 1 : 10));
  const workers = Number(values.workers ?? availableParallelism());
  if (!Number.isInteger(iterations) || iterations < 1) throw new Error(`--iterations takes a positive integer, got ${values.iterations}`);
  if (!Number.isInteger(workers) || workers < 2) throw new Error(`--workers takes an integer ≥ 2, got ${values.workers}`);
  const rows: BackendRow[] = [];
  for (const choice of ['gpu', 'tensorflow', 'wasm', 'cpu'] satisfies BackendChoice[]) {
    try {
      await useBackend(choice);
    } catch (error) {
      console.log(`skipped ${choice}: ${error instanceof Error ? error.message : String(error)}`);
      continue;
    }
    const sizes = values.quick ? QUICK : choice === 'cpu' ? SMALL : FULL;
    console.log(`measuring ${choice}…`);
    rows.push(await mainThread(choice === 'wasm' ? 'wasm, 1 thread' : choice, sizes, iterations));
    if (choice === 'wasm') rows.push(await workerPool(workers, sizes, iterations), await workerPool(workers, sizes, iterations, true));
  }
  console.log(`\n${formatBackendTable(rows)}`);
  const wasm = rows.find((r) => r.setup === 'wasm, 1 thread');
  for (const pool of rows.filter((r) => r.setup.startsWith('wasm,') && r !== wasm)) {
    if (wasm) console.log(`${pool.setup} vs 1 thread: conv2d ${(pool.conv2d / wasm.conv2d).toFixed(2)}×, depthwise ${(pool.depthwise / wasm.depthwise).toFixed(2)}×, matMul ${(pool.matMul / wasm.matMul).toFixed(2)}×, MobileNetV2 forward ${(pool.forward / wasm.forward).toFixed(2)}×`);
  }
  return rows;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(`bench backends: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
}
