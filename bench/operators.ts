import * as tf from '@tensorflow/tfjs-core';
import { from, lastValueFrom, toArray } from 'rxjs';
import { Bench } from 'tinybench';
import type { DecodedImage, ImageBatch, Sample } from '../src/core/types.js';
import { createModel, disposeClassifier } from '../src/models/index.js';
import { augment } from '../src/operators/augment.js';
import { batch } from '../src/operators/batch.js';
import { decode } from '../src/operators/decode.js';
import { discover } from '../src/operators/discover.js';
import { predict } from '../src/operators/predict.js';
import { normalize } from '../src/operators/to-tensor.js';
import { train } from '../src/operators/train.js';

export interface BenchRow {
  operator: string;
  /** Items (images) one run of the case handles. */
  items: number;
  itemsPerSecond: number;
  /** Relative to the first row, so the table reads as ratios side by side. */
  ratio: number;
}

export interface OperatorBenchOptions {
  /** Folder-per-class dataset whose JPEGs are decoded. */
  data: string;
  /** Images per decode case. */
  images: number;
  size: number;
  batch: number;
  /** tinybench time budget per case, in ms. */
  time: number;
}

/** Items per second of each operator alone, on real JPEGs, measured in one tinybench run. */
export async function benchOperators(options: OperatorBenchOptions): Promise<BenchRow[]> {
  const dataset = await lastValueFrom(discover(options.data));
  const samples: Sample[] = dataset.samples.slice(0, options.images);
  const decoded: DecodedImage[] = await lastValueFrom(from(samples).pipe(decode({ size: options.size }), toArray()));
  const oneBatch: ImageBatch = (await lastValueFrom(from(decoded.slice(0, options.batch)).pipe(batch(options.batch), toArray())))[0]!;
  const model = await createModel('mobilenetv2', { classes: dataset.classes.length, inputSize: options.size });
  const optimizer = tf.train.adam(1e-3);

  const bench = new Bench({ time: options.time, iterations: 2, warmupIterations: 1, warmupTime: 0 });
  const cases: Array<[string, number, () => Promise<unknown> | unknown]> = [
    ['decode c=1', samples.length, () => lastValueFrom(from(samples).pipe(decode({ size: options.size, concurrency: 1 }), toArray()))],
    ['decode c=2', samples.length, () => lastValueFrom(from(samples).pipe(decode({ size: options.size, concurrency: 2 }), toArray()))],
    ['decode c=4', samples.length, () => lastValueFrom(from(samples).pipe(decode({ size: options.size, concurrency: 4 }), toArray()))],
    ['discover', dataset.samples.length, () => lastValueFrom(discover(options.data))],
    ['augment', decoded.length, () => lastValueFrom(from(decoded).pipe(augment({ seed: 0, epoch: 0 }), toArray()))],
    ['batch', decoded.length, () => lastValueFrom(from(decoded).pipe(batch(options.batch), toArray()))],
    ['normalize', oneBatch.y.length, () => normalize(oneBatch, model.preprocessing).dispose()],
    ['predict (mobilenetv2 0.5)', oneBatch.y.length, () => lastValueFrom(from([oneBatch]).pipe(predict(model)))],
    ['train step (mobilenetv2 0.5, frozen)', oneBatch.y.length, () => lastValueFrom(from([oneBatch]).pipe(train(model, optimizer)))],
  ];
  for (const [name, , fn] of cases) bench.add(name, fn);
  await bench.run();
  disposeClassifier(model);
  optimizer.dispose();

  const rows = cases.map(([name, items], i) => {
    const result = bench.tasks[i]!.result;
    if (result.state !== 'completed') throw new Error(`bench case '${name}' ended ${result.state}${'error' in result ? `: ${String(result.error)}` : ''}`);
    return { operator: name, items, itemsPerSecond: (items * 1000) / result.period, ratio: 0 };
  });
  return rows.map((row) => ({ ...row, ratio: row.itemsPerSecond / rows[0]!.itemsPerSecond }));
}
