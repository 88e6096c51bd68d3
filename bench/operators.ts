import * as tf from '@tensorflow/tfjs-core';
import { from, lastValueFrom, toArray } from 'rxjs';
import { Bench } from 'tinybench';
import { completed } from './completed.js';
import type { DecodedImage, ImageBatch, Sample } from '../src/core/types.js';
import { createModel, disposeClassifier, type Classifier } from '../src/models/index.js';
import { augment } from '../src/operators/augment.js';
import { batch } from '../src/operators/batch.js';
import { decode } from '../src/operators/decode.js';
import { discover } from '../src/operators/discover.js';
import { predict } from '../src/operators/predict.js';
import { normalize } from '../src/core/normalize.js';
import { train } from '../src/operators/train.js';
import { addMeasuredCase, busyCores } from './cpu.js';
import { fixed, formatTable, times } from './table.js';

export interface BenchRow {
  operator: string;
  /** Items (images) one run of the case handles. */
  items: number;
  itemsPerSecond: number;
  /** Relative to the first row, so the table reads as ratios side by side. */
  ratio: number;
  /** CPU seconds of the whole process (every thread) per wall second while the case ran. */
  busyCores: number;
  /** Items per CPU second: items/s per busy core. */
  itemsPerCoreSecond: number;
}

/** A model to time, `name` or `name:alpha` (e.g. `mobilenetv2:0.5`). */
export type ModelSpec = string;

export interface OperatorBenchOptions {
  /** Folder-per-class dataset whose JPEGs are decoded. */
  data: string;
  /** Images per decode case. */
  images: number;
  size: number;
  batch: number;
  /** tinybench time budget per case, in ms. */
  time: number;
  /** Models whose forward pass and (frozen-backbone) train step are timed; default MobileNetV2-0.5. */
  models?: readonly ModelSpec[];
}

type Case = [name: string, items: number, run: () => Promise<unknown> | unknown];

export function parseModelSpec(spec: ModelSpec): { name: string; alpha?: number } {
  const [name, alpha] = spec.split(':');
  if (!name || (alpha !== undefined && !Number.isFinite(Number(alpha)))) throw new Error(`model '${spec}' is not name or name:alpha (e.g. mobilenetv2:0.5)`);
  return alpha === undefined ? { name } : { name, alpha: Number(alpha) };
}

/**
 * Items per second of each operator alone, on real JPEGs, measured in one tinybench run, with the
 * CPU time every case took (all threads: libuv's pool and sharp's workers too).
 */
export async function benchOperators(options: OperatorBenchOptions): Promise<BenchRow[]> {
  const dataset = await lastValueFrom(discover(options.data));
  if (dataset.samples.length === 0) throw new Error(`no images found in ${options.data}`);
  const samples: Sample[] = dataset.samples.slice(0, options.images);
  const decoded: DecodedImage[] = await lastValueFrom(from(samples).pipe(decode({ size: options.size }), toArray()));
  const oneBatch: ImageBatch = (await lastValueFrom(from(decoded.slice(0, options.batch)).pipe(batch(options.batch), toArray())))[0]!;

  const models: Array<{ model: Classifier; optimizer: tf.Optimizer }> = [];
  try {
    for (const spec of options.models ?? ['mobilenetv2:0.5']) {
      const { name, alpha } = parseModelSpec(spec);
      // Random weights: speed does not depend on them, and nothing needs downloading.
      const model = await createModel(name, { classes: dataset.classes.length, weights: 'none', inputSize: options.size, ...(alpha === undefined ? {} : { alpha }) });
      models.push({ model, optimizer: tf.train.adam(1e-3) });
    }
    const normalizing = models[0]?.model.preprocessing ?? 'symmetric';

    const cases: Case[] = [
      ...(['fast', 'sharp'] as const).flatMap((decoder) =>
        [1, 2, 4].map((concurrency): Case => [`decode ${decoder} c=${concurrency}`, samples.length, () => lastValueFrom(from(samples).pipe(decode({ size: options.size, concurrency, decoder }), toArray()))]),
      ),
      ['discover', dataset.samples.length, () => lastValueFrom(discover(options.data))],
      ['augment', decoded.length, () => lastValueFrom(from(decoded).pipe(augment({ seed: 0, epoch: 0 }), toArray()))],
      ['batch', decoded.length, () => lastValueFrom(from(decoded).pipe(batch(options.batch), toArray()))],
      ['normalize', oneBatch.y.length, () => normalize(oneBatch, normalizing).dispose()],
      ...models.flatMap(({ model, optimizer }): Case[] => [
        [`predict ${model.name}`, oneBatch.y.length, () => lastValueFrom(from([oneBatch]).pipe(predict(model)))],
        [`train step ${model.name} (${model.backbone ? 'frozen backbone' : 'whole network'})`, oneBatch.y.length, () => lastValueFrom(from([oneBatch]).pipe(train(model, optimizer)))],
      ]),
    ];

    const bench = new Bench({ time: options.time, iterations: 2, warmupIterations: 1, warmupTime: 0 });
    const usage = cases.map(([name, , run]) => addMeasuredCase(bench, name, run));
    await bench.run();

    const rows = cases.map(([name, items], i) => {
      const result = completed(bench.tasks[i]!);
      const { calls, cpuSeconds } = usage[i]!;
      return {
        operator: name,
        items,
        itemsPerSecond: (items * 1000) / result.period,
        ratio: 0,
        busyCores: busyCores(usage[i]!),
        itemsPerCoreSecond: cpuSeconds > 0 ? (items * calls) / cpuSeconds : Number.POSITIVE_INFINITY,
      };
    });
    return rows.map((row) => ({ ...row, ratio: row.itemsPerSecond / rows[0]!.itemsPerSecond }));
  } finally {
    for (const { model, optimizer } of models) {
      disposeClassifier(model);
      optimizer.dispose();
    }
  }
}

export function formatOperatorTable(rows: readonly BenchRow[]): string {
  return formatTable(
    ['operator', 'items', 'items/s', 'ratio', 'busy cores', 'items/s per busy core'],
    rows.map((r) => [r.operator, String(r.items), fixed(r.itemsPerSecond), times(r.ratio), fixed(r.busyCores, 2), fixed(r.itemsPerCoreSecond)]),
  );
}
