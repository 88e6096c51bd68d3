import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { from, lastValueFrom, toArray, type Observable } from 'rxjs';
import { Bench } from 'tinybench';
import type { ImageBatch, Sample } from '../src/core/types.js';
import { createModel, disposeClassifier } from '../src/models/index.js';
import { batch } from '../src/operators/batch.js';
import { decode } from '../src/operators/decode.js';
import { predict } from '../src/operators/predict.js';
import { prefetch } from '../src/operators/prefetch.js';
import { threadCpuSince, threadSnapshot, type ThreadCpu } from './cpu.js';
import { fixed, formatTable, times } from './table.js';

/** How the decode side is set up: images decoded at once, and libvips threads per image. */
export interface DecodeSetup {
  concurrency: number;
  sharpThreads: number;
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
  modelOnlyCores: ThreadCpu | null;
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

/** Runs `fn` as one tinybench case and adds up the CPU each thread pool spent in it. */
function timedCase(bench: Bench, name: string, fn: () => Promise<unknown>): { cpu: ThreadCpu | null; wall: number } {
  const totals = { cpu: threadSnapshot() ? { main: 0, libvips: 0, other: 0 } : null, wall: 0 } as { cpu: ThreadCpu | null; wall: number };
  bench.add(name, async () => {
    const start = threadSnapshot();
    const t0 = performance.now();
    await fn();
    totals.wall += (performance.now() - t0) / 1000;
    const used = threadCpuSince(start);
    if (used && totals.cpu) for (const pool of ['main', 'libvips', 'other'] as const) totals.cpu[pool] += used[pool];
  });
  return totals;
}

const perWallSecond = (totals: { cpu: ThreadCpu | null; wall: number }): ThreadCpu | null =>
  totals.cpu && totals.wall > 0 ? { main: totals.cpu.main / totals.wall, libvips: totals.cpu.libvips / totals.wall, other: totals.cpu.other / totals.wall } : null;

/**
 * Whether prefetching hides the slower stage: end-to-end images/s of the graph's inference pass
 * (prefetch → decode → batch → predict) against decode alone and the model alone on pre-decoded
 * batches, for each decode setup, all in one tinybench run.
 */
export async function benchOverlap(options: OverlapOptions): Promise<OverlapReport> {
  const { samples, size } = options;
  const sharpDefaultThreads = sharp.concurrency();
  const model = await createModel(options.model.name, { classes: 1000, weights: 'none', inputSize: size, ...(options.model.alpha === undefined ? {} : { alpha: options.model.alpha }) });
  try {
    const decoded = await lastValueFrom(from(samples).pipe(decode({ size }), batch(options.batch), toArray()));
    const images = decoded.reduce((n, b) => n + b.y.length, 0);
    if (images !== samples.length) throw new Error(`overlap bench: ${samples.length - images} of ${samples.length} images could not be decoded`);

    /** The graph's inference feed: decode under a prefetch bound, batched, into `consume`. */
    const pass = (setup: DecodeSetup, consume: (batches: Observable<ImageBatch>) => Observable<{ y: Int32Array } | { labels: Int32Array }>) => {
      sharp.concurrency(setup.sharpThreads);
      const feed = prefetch(options.prefetchBatches * options.batch);
      return lastValueFrom(
        consume(feed.source(samples).pipe(decode({ size, concurrency: setup.concurrency, onSkip: feed.drop }), batch(options.batch))).pipe(
          feed.consumed((v) => ('y' in v ? v.y : v.labels).length),
          toArray(),
        ),
      );
    };

    const bench = new Bench({ time: 0, iterations: options.iterations, warmupIterations: 1, warmupTime: 0 });
    const modelOnly = timedCase(bench, 'model only', () => lastValueFrom(from(decoded).pipe(predict(model), toArray())));
    const perSetup = options.setups.map((setup) => {
      const label = `c=${setup.concurrency} sharp=${setup.sharpThreads}`;
      return {
        setup,
        decodeOnly: timedCase(bench, `decode only ${label}`, () => pass(setup, (batches) => batches)),
        endToEnd: timedCase(bench, `end-to-end ${label}`, () => pass(setup, (batches) => batches.pipe(predict(model)))),
        label,
      };
    });
    try {
      await bench.run();
    } finally {
      sharp.concurrency(sharpDefaultThreads);
    }
    const rate = (name: string) => {
      const result = bench.getTask(name)!.result;
      if (result.state !== 'completed') throw new Error(`bench case '${name}' ended ${result.state}${'error' in result ? `: ${String(result.error)}` : ''}`);
      return (images * 1000) / result.period;
    };
    const modelRate = rate('model only');
    const rows: OverlapRow[] = perSetup.map(({ setup, decodeOnly, endToEnd, label }) => {
      const decodeRate = rate(`decode only ${label}`);
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
      modelOnlyCores: perWallSecond(modelOnly),
      rows,
      best: { concurrency: best.concurrency, sharpThreads: best.sharpThreads },
    };
  } finally {
    disposeClassifier(model);
  }
}

const cores = (c: ThreadCpu | null) => (c ? `${c.main.toFixed(2)} / ${c.libvips.toFixed(2)} / ${c.other.toFixed(2)}` : 'n/a');

export function formatOverlapTable(report: OverlapReport): string {
  const table = formatTable(
    ['decode setup', 'decode only img/s', 'model only img/s', 'end-to-end img/s', 'e2e / min', 'target ≥ 0.9×', 'cores e2e main/vips/other', 'cores decode-only'],
    report.rows.map((r) => [
      `concurrency ${r.concurrency}, sharp ${r.sharpThreads} thr`,
      fixed(r.decodeOnly),
      fixed(r.modelOnly),
      fixed(r.endToEnd),
      times(r.ratio),
      r.ratio >= 0.9 ? 'met' : 'MISSED',
      cores(r.endToEndCores),
      cores(r.decodeOnlyCores),
    ]),
  );
  return [
    `${report.model} on ${report.backend}, ${report.images} images, batch ${report.batch}, prefetch ${report.prefetchBatches} batches; libuv pool ${report.uvThreadpoolSize} threads, sharp.concurrency() default ${report.sharpDefaultThreads}`,
    table,
    `model only: cores main/vips/other ${cores(report.modelOnlyCores)}`,
    `fastest end-to-end: decode concurrency ${report.best.concurrency}, sharp ${report.best.sharpThreads} thread(s) per image`,
  ].join('\n');
}
