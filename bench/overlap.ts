import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { concatMap, from, lastValueFrom, toArray, type Observable } from 'rxjs';
import { Bench } from 'tinybench';
import { completed } from './completed.js';
import type { ImageBatch, Sample } from '../src/core/types.js';
import { ParallelModel } from '../src/backends/parallel.js';
import { disposeModel } from '../src/models/classifier.js';
import { createModel, disposeClassifier } from '../src/models/index.js';
import { asLayersModel } from '../src/models/persistence.js';
import { batch } from '../src/operators/batch.js';
import { WorkersEngine } from '../src/engines/workers.js';
import type { InferenceEngine } from '../src/engines/engine.js';
import { imageFeed, type Counted } from '../src/stages/feed.js';
import { decode } from '../src/operators/decode.js';
import { predict } from '../src/operators/predict.js';
import { normalize } from '../src/core/normalize.js';
import type { Preprocessing } from '../src/models/preprocessing.js';
import { addMeasuredCase, type CaseUsage, type ThreadCpu } from './cpu.js';
import { fixed, formatTable, times } from './table.js';

/**
 * How the pipeline is set up: images decoded at once, libvips threads per image, and where the
 * model computes (0: the main thread; N: N worker threads, the main thread only feeds them).
 */
export interface DecodeSetup {
  concurrency: number;
  sharpThreads: number;
  workers: number;
}

export interface OverlapRow extends DecodeSetup {
  decodeOnly: number;
  modelOnly: number;
  endToEnd: number;
  /** endToEnd / min(decodeOnly, modelOnly); the target is ≥ 0.9. */
  ratio: number;

  /** Cores each thread pool kept busy during the end-to-end case (null off Linux). */
  endToEndCores: ThreadCpu | null;
  decodeOnlyCores: ThreadCpu | null;
}

export interface OverlapReport {
  model: string;
  backend: string;
  images: number;
  batch: number;
  prefetchBatches: number;
  /** libuv's pool size: fixed at start-up by UV_THREADPOOL_SIZE (4 unless set). */
  uvThreadpoolSize: number;
  sharpDefaultThreads: number;
  /** Cores the model alone kept busy, by where it computed (workers: 0, 1, …). */
  modelOnlyCores: Record<number, ThreadCpu | null>;
  /**
   * The model alone on workers (the pool called directly) fed the 8-bit pixels the graphs send
   * (`pool.predictImages`) against float32 input normalised on this thread (`pool.predict`):
   * images/s and this thread's busy cores.
   */
  inputFormats: Array<{ workers: number; pixels: number; floats: number; pixelsMainCores: number | null; floatsMainCores: number | null }>;
  cores: number;
  rows: OverlapRow[];
  /** The setup with the highest end-to-end rate. */
  best: DecodeSetup;
}

export interface OverlapOptions {
  samples: readonly Sample[];
  size: number;
  batch: number;
  /** Batches decoded ahead of the model (the graph's `--prefetch`). */
  prefetchBatches: number;
  setups: readonly DecodeSetup[];
  /** Model spec as in the operator bench; `mobilenetv2:0.5` is the main job's. */
  model: { name: string; alpha?: number };
  /** Timed runs per case (after one warm-up run). */
  iterations: number;
}

/** A case that adds up the CPU each thread pool spent in it. */
const timedCase = (bench: Bench, name: string, fn: () => Promise<unknown>): CaseUsage => addMeasuredCase(bench, name, fn, { threads: true });

const perWallSecond = ({ threads, wallSeconds }: CaseUsage): ThreadCpu | null =>
  threads && wallSeconds > 0 ? { main: threads.main / wallSeconds, libvips: threads.libvips / wallSeconds, other: threads.other / wallSeconds } : null;

/**
 * Whether prefetching hides the slower stage: end-to-end images/s of the graph's inference pass
 * (prefetch → decode → batch → predict) against decode alone and the model alone on pre-decoded
 * batches, for each setup, all in one tinybench run.
 */
export async function benchOverlap(options: OverlapOptions): Promise<OverlapReport> {
  const { samples, size } = options;
  const sharpDefaultThreads = sharp.concurrency();
  const cores = availableParallelism();
  const model = await createModel(options.model.name, { classes: 1000, weights: 'none', inputSize: size, ...(options.model.alpha === undefined ? {} : { alpha: options.model.alpha }) });
  const whole = asLayersModel(model);
  const pools = new Map<number, ParallelModel | undefined>();
  try {
    for (const workers of new Set(options.setups.map((s) => s.workers))) pools.set(workers, workers > 0 ? await ParallelModel.create(whole, { workers }) : undefined);
    // the graphs' path to the pools: an engine each (disposing the engine ends its pool)
    const engines = new Map<number, InferenceEngine | undefined>([...pools].map(([workers, pool]) => [workers, pool && new WorkersEngine(pool, model.preprocessing)]));
    const decoded = await lastValueFrom(from(samples).pipe(decode({ size }), batch(options.batch), toArray()));
    const images = decoded.reduce((n, b) => n + b.y.length, 0);
    if (images !== samples.length) throw new Error(`overlap bench: ${samples.length - images} of ${samples.length} images could not be decoded`);

    /** The graph's inference feed (decode under a prefetch bound, batched) into `consume`. */
    const pass = (setup: DecodeSetup, consume: (batches: Observable<ImageBatch>) => Observable<Counted>) => {
      sharp.concurrency(setup.sharpThreads);
      return lastValueFrom(imageFeed(samples, { bound: options.prefetchBatches * options.batch, batch: options.batch, size, concurrency: setup.concurrency }, consume).pipe(toArray()));
    };
    const where = (workers: number) => (workers === 0 ? 'main thread' : `${workers} worker${workers > 1 ? 's' : ''}`);

    const bench = new Bench({ time: 0, iterations: options.iterations, warmupIterations: 1, warmupTime: 0 });
    const modelOnly = new Map([...engines].map(([workers, engine]) => [workers, timedCase(bench, `model only, ${where(workers)}`, () => lastValueFrom(from(decoded).pipe(predict(model, engine), toArray())))]));
    // Both input formats timed the same way: the pool called directly, batch after batch.
    const inputFormats = [...pools].flatMap(([workers, pool]) =>
      pool
        ? [
            {
              workers,
              ...Object.fromEntries(
                (['pixels', 'floats'] as const).map((format) => [format, timedCase(bench, `model only, ${where(workers)}, ${format}`, () => lastValueFrom(from(decoded).pipe(concatMap((b) => predictAs(format, pool, b, model.preprocessing)), toArray())))]),
              ) as Record<'pixels' | 'floats', CaseUsage>,
            },
          ]
        : [],
    );
    const perSetup = options.setups.map((setup) => {
      const label = `c=${setup.concurrency} sharp=${setup.sharpThreads} ${where(setup.workers)}`;
      return {
        setup,
        decodeOnly: timedCase(bench, `decode only ${label}`, () => pass(setup, (batches) => batches)),
        endToEnd: timedCase(bench, `end-to-end ${label}`, () => pass(setup, (batches) => batches.pipe(predict(model, engines.get(setup.workers))))),
        label,
      };
    });
    try {
      await bench.run();
    } finally {
      sharp.concurrency(sharpDefaultThreads);
    }
    const rate = (name: string) => {
      const result = completed(bench.getTask(name)!);
      return (images * 1000) / result.period;
    };
    const rows: OverlapRow[] = perSetup.map(({ setup, decodeOnly, endToEnd, label }) => {
      const decodeRate = rate(`decode only ${label}`);
      const modelRate = rate(`model only, ${where(setup.workers)}`);
      const e2e = rate(`end-to-end ${label}`);
      return { ...setup, decodeOnly: decodeRate, modelOnly: modelRate, endToEnd: e2e, ratio: e2e / Math.min(decodeRate, modelRate), endToEndCores: perWallSecond(endToEnd), decodeOnlyCores: perWallSecond(decodeOnly) };
    });
    const best = rows.reduce((a, b) => (b.endToEnd > a.endToEnd ? b : a));
    return {
      model: model.name,
      backend: tf.getBackend(),
      images,
      batch: options.batch,
      prefetchBatches: options.prefetchBatches,
      uvThreadpoolSize: Number(process.env.UV_THREADPOOL_SIZE) || 4,
      sharpDefaultThreads,
      modelOnlyCores: Object.fromEntries([...modelOnly].map(([workers, totals]) => [workers, perWallSecond(totals)])),
      inputFormats: inputFormats.map(({ workers, pixels, floats }) => ({
        workers,
        pixels: rate(`model only, ${where(workers)}, pixels`),
        floats: rate(`model only, ${where(workers)}, floats`),
        pixelsMainCores: perWallSecond(pixels)?.main ?? null,
        floatsMainCores: perWallSecond(floats)?.main ?? null,
      })),
      cores,
      rows,
      best: { concurrency: best.concurrency, sharpThreads: best.sharpThreads, workers: best.workers },
    };
  } finally {
    await Promise.all([...pools.values()].map((pool) => pool?.dispose()));
    disposeModel(whole);
    disposeClassifier(model);
  }
}

/**
 * The pool's model on a batch sent as 8-bit `pixels` that each worker normalises (what the graphs
 * do), or as `floats` normalised here first; read out like the predict operator reads it.
 */
async function predictAs(format: 'pixels' | 'floats', pool: ParallelModel, images: ImageBatch, preprocessing: Preprocessing): Promise<void> {
  const x = format === 'floats' ? normalize(images, preprocessing) : null;
  try {
    const probs = x ? await pool.predict(x) : await pool.predictImages(images, preprocessing);
    await probs.data();
    probs.dispose();
  } finally {
    x?.dispose();
  }
}

const coreShares = (c: ThreadCpu | null) => (c ? `${c.main.toFixed(2)} / ${c.libvips.toFixed(2)} / ${c.other.toFixed(2)}` : 'n/a');

export function formatOverlapTable(report: OverlapReport): string {
  const where = (workers: number) => (workers === 0 ? 'main' : `${workers} worker${workers > 1 ? 's' : ''}`);
  const table = formatTable(
    ['setup: decoding threads, sharp threads, model on', 'decode only img/s', 'model only img/s', 'end-to-end img/s', 'e2e / min', 'target ≥ 0.9×', 'cores e2e main/vips/other'],
    report.rows.map((r) => [
      `${r.concurrency}, sharp ${r.sharpThreads}, ${where(r.workers)}`,
      fixed(r.decodeOnly),
      fixed(r.modelOnly),
      fixed(r.endToEnd),
      times(r.ratio),
      r.ratio >= 0.9 ? 'met' : 'MISSED',
      coreShares(r.endToEndCores),
    ]),
  );
  return [
    `${report.model} on ${report.backend}, ${report.images} images, batch ${report.batch}, prefetch ${report.prefetchBatches} batches; ${report.cores} cores; libuv pool ${report.uvThreadpoolSize} threads, sharp.concurrency() default ${report.sharpDefaultThreads}`,
    table,
    `model only, cores main/vips/other (worker threads count as other): ${Object.entries(report.modelOnlyCores).map(([workers, c]) => `${where(Number(workers))} ${coreShares(c)}`).join('; ')}`,
    ...report.inputFormats.map(
      (f) =>
        `model only, ${where(f.workers)}: 8-bit input (workers normalise) ${fixed(f.pixels)} img/s vs float32 input (normalised on this thread) ${fixed(f.floats)} img/s = ${times(f.pixels / f.floats)}; this thread busy ${f.pixelsMainCores?.toFixed(2) ?? 'n/a'} vs ${f.floatsMainCores?.toFixed(2) ?? 'n/a'} cores`,
    ),
    `fastest end-to-end: ${report.best.concurrency} decoding thread(s), sharp ${report.best.sharpThreads} thread(s) per image, model on ${where(report.best.workers)}`,
  ].join('\n');
}
