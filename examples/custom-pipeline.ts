// A custom pipeline in code: npx tsx examples/custom-pipeline.ts
import * as tf from '@tensorflow/tfjs-core';
import { firstValueFrom, last, lastValueFrom, range, concatMap } from 'rxjs';
import { createModel, discover, imageFeed, metrics, parseProtocol, predict, split, train, useBackend } from '../src/index.js';

await useBackend('auto');
const data = await firstValueFrom(discover('fixtures/caltech101-mini').pipe(split({ protocol: parseProtocol('per-class:20'), seed: 1 })));
const model = await createModel('mobilenetv2', { classes: data.classes.length, inputSize: 128 });
const optimizer = tf.train.adam(1e-3);
const feed = { bound: 4 * 16, batch: 16, size: model.inputSize }; // at most 4 batches decoded ahead

await lastValueFrom(range(1, 3).pipe(concatMap((epoch) =>
  imageFeed(data.train, { ...feed, prepare: 'augment', augment: { seed: 1, epoch, root: data.roots.train } }, (batches) => batches.pipe(train(model, optimizer))),
)));

const test = await lastValueFrom(imageFeed(data.test, feed, (batches) => batches.pipe(predict(model))).pipe(metrics(data.classes.length), last()));
console.log(`test top-1 ${(100 * test.top1).toFixed(1)}%, mean per-class ${(100 * test.meanPerClass).toFixed(1)}% on ${test.count} images`);
