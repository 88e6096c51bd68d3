/**
 * `npm run bench -- engines` — ONNX Runtime (CPU, every core, on rxcnn's own ONNX export) against
 * tfjs-wasm on its best multi-core setup (this thread + one worker per further core, the
 * `ParallelModel` that `npm run bench -- backends` measures best), in one run: MobileNetV2 1.0 and
 * 0.5, MobileNet v1 0.25, SqueezeNet 1.1 and EfficientNet-B0 backbones, batch 32 of uint8 pixels at
 * 224 px, random weights (speed does not depend on them). Both engines get the same bytes and do
 * the preprocessing themselves; the outputs are compared too.
 *
 *   npm run bench -- engines [--quick] [--iterations N] [--models mobilenetv2:1.0,…] [--profile] [--spinning]
 *
 * `--profile` writes ONNX Runtime's per-node trace for each model and prints where its time goes by
 * operator type; `--spinning` lets ONNX Runtime's idle threads spin-wait (its own default; off in rxcnn).
 */
import { readFile, readdir, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';
import { Bench } from 'tinybench';
import { completed } from './completed.js';
import { addMeasuredCase, busyCores, MACHINE_PEAK_GFLOPS, MACHINE_PEAK_TEXT } from './cpu.js';
import { formatTable } from './table.js';
import { useBackend } from '../src/backend.js';
import { ParallelModel } from '../src/backends/parallel.js';
import { relativeDifference } from '../src/core/difference.js';
import type { ImageBatch } from '../src/core/types.js';
import { createOnnxEngine } from '../src/engines/onnxruntime.js';
import { disposeModel } from '../src/models/classifier.js';
import { getModel } from '../src/models/index.js';
import { exportOnnx } from '../src/onnx/export.js';

const DEFAULT_MODELS = 'mobilenetv2:1.0,mobilenetv2:0.5,mobilenetv1:0.25,squeezenet,efficientnetb0';
/** The issue's target for MobileNetV2-1.0 and -0.5: ONNX Runtime at least 6× tfjs-wasm's best. */
const TARGET = 6;
const WARMUP_CALLS = 3;

export interface EngineRow {
  model: string;
  /** Multiply-adds ×2 of the convolutions and dense layers, per image. */
  gflopPerImage: number;
  onnx: { imagesPerSecond: number; cores: number };
  wasm: { imagesPerSecond: number; cores: number; setup: string };
  /** max |ORT − tfjs| / max |tfjs| over the bench batch. */
  relativeDifference: number;
  /** Time by ONNX operator type, with --profile: [op, share of node time]. */
  profile?: Array<[string, number]>;
}

/** 2 × multiply-adds of every convolution and dense layer, per image (elementwise work left out). */
export function countFlops(model: LayersModel): number {
  let flops = 0;
  for (const layer of model.layers) {
    const out = layer.outputShape as number[];
    const config = layer.getConfig() as Record<string, unknown>;
    const kernel = (config.kernelSize as number[] | undefined) ?? [1, 1];
    const inChannels = () => (layer.input as SymbolicTensor).shape.at(-1) as number;
    const pixels = out.length === 4 ? out[1]! * out[2]! : 1;
    switch (layer.getClassName()) {
      case 'Conv2D':
        flops += 2 * pixels * out[3]! * kernel[0]! * kernel[1]! * inChannels();
        break;
      case 'DepthwiseConv2D':
        flops += 2 * pixels * out[3]! * kernel[0]! * kernel[1]!;
        break;
      case 'SeparableConv2D': {
        const depthwise = inChannels() * ((config.depthMultiplier as number | undefined) ?? 1);
        flops += 2 * pixels * (depthwise * kernel[0]! * kernel[1]! + depthwise * out[3]!);
        break;
      }
      case 'Dense':
        flops += 2 * inChannels() * out.at(-1)!;
        break;
    }
  }
  return flops;
}

/** Median seconds per call and cores kept busy, after warm-up calls, for each case in one tinybench run. */
async function timeCases(cases: Array<[string, () => Promise<unknown>]>, iterations: number): Promise<Array<{ seconds: number; cores: number }>> {
  const bench = new Bench({ time: 0, iterations, warmupIterations: WARMUP_CALLS, warmupTime: 0 });
  const usage = cases.map(([name, run]) => addMeasuredCase(bench, name, run));
  await bench.run();
  return bench.tasks.map((task, i) => ({ seconds: completed(task).latency.p50 / 1000, cores: busyCores(usage[i]!) }));
}

/** ONNX Runtime's trace → share of node time by operator type, largest first. */
async function profileByOp(file: string): Promise<Array<[string, number]>> {
  const events = JSON.parse(await readFile(file, 'utf8')) as Array<{ cat: string; dur: number; args?: { op_name?: string } }>;
  const byOp = new Map<string, number>();
  for (const e of events) if (e.cat === 'Node' && e.args?.op_name) byOp.set(e.args.op_name, (byOp.get(e.args.op_name) ?? 0) + e.dur);
  const total = [...byOp.values()].reduce((a, b) => a + b, 0);
  return [...byOp].sort((a, b) => b[1] - a[1]).map(([op, us]) => [op, us / total]);
}

async function benchModel(spec: string, options: { size: number; batch: number; iterations: number; cores: number; profile: boolean; spinning: boolean }): Promise<EngineRow> {
  const [name, alphaText] = spec.split(':') as [string, string | undefined];
  const definition = getModel(name);
  const alpha = alphaText === undefined ? (definition.alphas?.[0] ?? 1) : Number(alphaText);
  const model = definition.build({ inputSize: options.size, alpha, includeTop: false, classes: 1, pooling: 'avg' });
  const label = `${name}${definition.alphas ? `-${Number.isInteger(alpha) ? alpha.toFixed(1) : alpha}` : ''}`;
  const random = new Uint8Array(options.batch * options.size * options.size * 3);
  for (let i = 0; i < random.length; i++) random[i] = (i * 2654435761) >>> 24; // fixed pseudo-random bytes
  const batch: ImageBatch = { x: random, shape: [options.batch, options.size, options.size, 3], y: new Int32Array(options.batch), paths: [] };
  const { bytes } = exportOnnx(model, { preprocessing: definition.preprocessing });
  const profilePrefix = join(tmpdir(), `rxcnn-ort-profile-${process.pid}-${name}`);
  const onnx = await createOnnxEngine(bytes, { provider: 'cpu', threads: options.cores, spinning: options.spinning, ...(options.profile ? { profile: profilePrefix } : {}) });
  const pool = await ParallelModel.create(model, { workers: options.cores - 1, mainThread: true });
  try {
    const ours = await onnx.run(batch);
    const theirs = await pool.predictImages(batch, definition.preprocessing);
    const reference = (await theirs.data()) as Float32Array;
    theirs.dispose();
    const { relative } = relativeDifference(reference, ours.values);
    const [ort, wasm] = await timeCases(
      [
        ['onnxruntime', () => onnx.run(batch)],
        ['tfjs-wasm', async () => (await pool.predictImages(batch, definition.preprocessing)).dispose()],
      ],
      options.iterations,
    );
    let profile: EngineRow['profile'];
    if (options.profile) {
      onnx.endProfiling();
      const dir = dirname(profilePrefix);
      const file = (await readdir(dir)).find((f) => f.startsWith(basename(profilePrefix)) && f.endsWith('.json'));
      if (file) {
        profile = await profileByOp(join(dir, file));
        await rm(join(dir, file));
      }
    }
    return {
      model: label,
      gflopPerImage: countFlops(model) / 1e9,
      onnx: { imagesPerSecond: options.batch / ort!.seconds, cores: ort!.cores },
      wasm: { imagesPerSecond: options.batch / wasm!.seconds, cores: wasm!.cores, setup: `this thread + ${options.cores - 1} worker${options.cores > 2 ? 's' : ''}` },
      relativeDifference: relative,
      ...(profile ? { profile } : {}),
    };
  } finally {
    await onnx.dispose();
    await pool.dispose();
    disposeModel(model);
  }
}

const gflops = (gflopPerImage: number, imagesPerSecond: number) => {
  const rate = gflopPerImage * imagesPerSecond;
  return `${rate.toFixed(1)} (${((100 * rate) / MACHINE_PEAK_GFLOPS).toFixed(0)}%)`;
};

export function formatEngineTable(rows: EngineRow[], meta: { batch: number; size: number; cores: number; spinning: boolean }): string {
  const head = ['model', 'GFLOP/img', 'ONNX Runtime img/s', 'GFLOP/s (% peak)', 'cores busy', 'tfjs-wasm img/s', 'GFLOP/s (% peak)', 'cores busy', 'ratio', 'max rel diff'];
  const cells = rows.map((r) => {
    const ratio = r.onnx.imagesPerSecond / r.wasm.imagesPerSecond;
    const target = /^mobilenetv2-/.test(r.model) ? (ratio >= TARGET ? ` (≥ ${TARGET}×: met)` : ` (target ${TARGET}×: missed)`) : '';
    return [
      r.model,
      r.gflopPerImage.toFixed(3),
      r.onnx.imagesPerSecond.toFixed(1),
      gflops(r.gflopPerImage, r.onnx.imagesPerSecond),
      r.onnx.cores.toFixed(2),
      r.wasm.imagesPerSecond.toFixed(1),
      gflops(r.gflopPerImage, r.wasm.imagesPerSecond),
      r.wasm.cores.toFixed(2),
      `${ratio.toFixed(2)}×${target}`,
      r.relativeDifference.toExponential(1),
    ];
  });
  const profiles = rows.filter((r) => r.profile).map((r) => `  ${r.model}: ${r.profile!.slice(0, 8).map(([op, share]) => `${op} ${(100 * share).toFixed(1)}%`).join(', ')}`);
  return [
    formatTable(head, cells),
    `batch ${meta.batch} uint8 images at ${meta.size} px, random weights; ONNX Runtime CPU with ${meta.cores} intra-op threads${meta.spinning ? ' (spinning)' : ''} on rxcnn's export; tfjs-wasm on this thread + ${meta.cores - 1} worker${meta.cores > 2 ? 's' : ''} (ParallelModel.predictImages)`,
    `GFLOP counts 2 × the multiply-adds of convolutions and dense layers; % of the ${MACHINE_PEAK_TEXT}`,
    ...(profiles.length ? ['ONNX Runtime node time by operator:', ...profiles] : []),
  ].join('\n');
}

export async function main(argv: string[]): Promise<EngineRow[]> {
  const { values } = parseArgs({ args: argv, options: { quick: { type: 'boolean' }, iterations: { type: 'string' }, models: { type: 'string', default: DEFAULT_MODELS }, profile: { type: 'boolean' }, spinning: { type: 'boolean' }, threads: { type: 'string' } }, allowPositionals: true });
  const quick = values.quick ?? false;
  const iterations = Number(values.iterations ?? (quick ? 1 : 10));
  const cores = Number(values.threads ?? availableParallelism());
  if (!Number.isInteger(iterations) || iterations < 1) throw new Error(`--iterations takes a positive integer, got ${values.iterations}`);
  if (!Number.isInteger(cores) || cores < 2) throw new Error(`--threads takes an integer ≥ 2 (tfjs' best setup needs a worker), got ${values.threads}`);
  const meta = { batch: quick ? 4 : 32, size: quick ? 64 : 224, cores, spinning: values.spinning ?? false };
  await useBackend('wasm');
  const tensors = tf.memory().numTensors;
  const rows: EngineRow[] = [];
  for (const spec of values.models.split(',')) {
    console.log(`measuring ${spec}…`);
    rows.push(await benchModel(spec, { ...meta, iterations, profile: values.profile ?? false }));
  }
  console.log(`\n${formatEngineTable(rows, meta)}`);
  console.log(`numTensors before→after: ${tensors}→${tf.memory().numTensors}`);
  return rows;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(`bench engines: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
}
