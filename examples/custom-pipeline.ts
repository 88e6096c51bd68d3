// A custom pipeline in code: npx tsx examples/custom-pipeline.ts
import * as tf from '@tensorflow/tfjs-core';
import { firstValueFrom, last, lastValueFrom, range, concatMap } from 'rxjs';
import { augment, batch, createModel, decode, discover, metrics, parseProtocol, predict, prefetch, split, train, useBackend } from '../src/index.js';

await useBackend('auto');
const data = await firstValueFrom(discover('fixtures/caltech101-mini').pipe(split({ protocol: parseProtocol('per-class:20'), seed: 1 })));
const model = await createModel('mobilenetv2', { classes: data.classes.length, inputSize: 128 });
const optimizer = tf.train.adam(1e-3);
const size = model.inputSize;

await lastValueFrom(range(1, 3).pipe(concatMap((epoch) => {
  const feed = prefetch(4 * 16); // at most 4 batches decoded ahead of training
  return feed.source(data.train).pipe(decode({ size, onSkip: feed.drop }), augment({ seed: 1, epoch }), batch(16), train(model, optimizer), feed.consumed((r) => r.labels.length));
})));

const feed = prefetch(64);
const test = await lastValueFrom(feed.source(data.test).pipe(decode({ size, onSkip: feed.drop }), batch(16), predict(model), feed.consumed((p) => p.labels.length), metrics(data.classes.length), last()));
console.log(`test top-1 ${(100 * test.top1).toFixed(1)}%, mean per-class ${(100 * test.meanPerClass).toFixed(1)}% on ${test.count} images`);
