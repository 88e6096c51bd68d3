import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { concatMap, lastValueFrom, map, range, tap, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { useBackend, type BackendChoice } from '../src/backend.js';
import { randomFor } from '../src/core/random.js';
import type { Batch, FeatureBatch, ImageBatch } from '../src/core/types.js';
import { denseHead, disposeClassifier, type Classifier } from '../src/models/classifier.js';
import { decode } from '../src/operators/decode.js';
import { predict } from '../src/operators/predict.js';
import { prefetch } from '../src/operators/prefetch.js';
import { train } from '../src/operators/train.js';
import { fixtureImages } from './helpers.js';

const STEPS = 200;
const SIDE = 8;
const BATCH = 4;

/** A tiny conv backbone and a dense head, seeded (see train-predict.test.ts); `fineTune` trains the backbone too. */
function tinyClassifier(fineTune: boolean): Classifier {
  const backbone = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [SIDE, SIDE, 3], filters: 4, kernelSize: 3, activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) }),
      tfl.layers.batchNormalization(),
      tfl.layers.globalAveragePooling2d({}),
    ],
  });
  backbone.trainable = fineTune;
  return { name: 'tiny', inputSize: SIDE, preprocessing: 'unit', classes: 3, backbone, head: denseHead(4, 3, { hidden: [8], dropout: 0.1, seed: 1 }), weights: 'random' };
}

function imageBatch(i: number): ImageBatch {
  const random = randomFor(5, 'leak', i);
  const x = Uint8Array.from({ length: BATCH * SIDE * SIDE * 3 }, () => Math.floor(random() * 256));
  const y = Int32Array.from({ length: BATCH }, () => Math.floor(random() * 3));
  return { x, shape: [BATCH, SIDE, SIDE, 3], y, paths: Array.from(y, (_, k) => `b${i}/${k}`) };
}

function featureBatch(i: number): FeatureBatch {
  const random = randomFor(5, 'leak-features', i);
  const y = Int32Array.from({ length: BATCH }, () => Math.floor(random() * 3));
  return { features: Float32Array.from({ length: BATCH * 4 }, () => random()), shape: [BATCH, 4], y, paths: Array.from(y, (_, k) => `f${i}/${k}`) };
}

/** Runs `steps`, returning how many tensors there were before and after, and how many results came out. */
async function tensorsAcross(steps: () => Promise<unknown[]>): Promise<{ before: number; after: number; results: number }> {
  const before = tf.memory().numTensors;
  const results = (await steps()).length;
  return { before, after: tf.memory().numTensors, results };
}

/** Which backends load here; tfjs-node is optional and cannot install offline. */
const CHOICES: ReadonlyArray<Exclude<BackendChoice, 'auto' | 'gpu'>> = ['tensorflow', 'wasm', 'cpu'];
const unavailable = new Map<string, string>();
for (const choice of CHOICES) {
  await useBackend(choice).catch((error: unknown) => unavailable.set(choice, (error as Error).message));
}

describe.each(CHOICES)('no tensor leaks on the %s backend', (choice) => {
  const paths: Array<{ name: string; fineTune: boolean; make: (i: number) => Batch }> = [
    { name: 'frozen backbone, images', fineTune: false, make: imageBatch },
    { name: 'fine-tuned backbone, images', fineTune: true, make: imageBatch },
    { name: 'head only, cached features', fineTune: false, make: featureBatch },
  ];
  it.for(paths)(`numTensors is flat across ${STEPS} train and ${STEPS} predict steps: $name`, async ({ fineTune, make }, context) => {
    if (unavailable.has(choice)) context.skip(`${choice} backend not available: ${unavailable.get(choice)}`);
    await useBackend(choice);
    expect(tf.getBackend()).toBe(choice);
    const empty = tf.memory().numTensors;
    const model = tinyClassifier(fineTune);
    const optimizer = tf.train.adam(0.01);
    await lastValueFrom(range(0, 1).pipe(map(make), train(model, optimizer))); // Adam makes its slots on the first step

    const batches = () => range(0, STEPS).pipe(map(make));
    const trained = await tensorsAcross(() => lastValueFrom(batches().pipe(train(model, optimizer), toArray())));
    expect(trained.results).toBe(STEPS);
    expect(trained.after, 'tensors after train steps').toBe(trained.before);
    const predicted = await tensorsAcross(() => lastValueFrom(batches().pipe(predict(model), toArray())));
    expect(predicted.results).toBe(STEPS);
    expect(predicted.after, 'tensors after predict steps').toBe(predicted.before);

    optimizer.dispose();
    disposeClassifier(model);
    expect(tf.memory().numTensors, 'everything released with the model').toBe(empty);
  });
});

describe('prefetch under a stalled consumer', () => {
  it('admits exactly `bound` items and decodes no more while the consumer is stuck, then delivers every image in order', async () => {
    const paths = (await fixtureImages('bonsai')).slice(0, 30);
    const bound = 6;
    const feed = prefetch(bound);
    let pulled = 0;
    let decoded = 0;
    function* samples() {
      for (const [label, path] of paths.entries()) {
        pulled++;
        yield { path, label };
      }
    }
    let unstall!: () => void;
    const stalled = new Promise<void>((resolve) => (unstall = resolve));
    const done = lastValueFrom(
      feed.source(samples()).pipe(
        decode({ size: 16, concurrency: 4, onSkip: feed.drop }),
        tap(() => decoded++),
        concatMap(async (image) => {
          await stalled;
          return image;
        }),
        feed.consumed(() => 1),
        toArray(),
      ),
    );
    const deadline = Date.now() + 20_000;
    while (decoded < bound && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    // Stuck for a while with the whole backlog decoded: nothing more is read or decoded.
    await new Promise((r) => setTimeout(r, 300));
    expect({ pulled, decoded, outstanding: feed.outstanding }).toEqual({ pulled: bound, decoded: bound, outstanding: bound });

    unstall();
    const images = await done;
    expect(images.map((image) => image.path)).toEqual(paths);
    expect(pulled).toBe(paths.length);
    expect(feed.peak).toBe(bound);
    expect(feed.outstanding).toBe(0);
  });
});
