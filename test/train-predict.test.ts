import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { from, lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { randomFor } from '../src/core/random.js';
import type { ImageBatch } from '../src/core/types.js';
import { denseHead, disposeClassifier, type Classifier } from '../src/models/classifier.js';
import { predict } from '../src/operators/predict.js';
import { balancedClassWeights, train } from '../src/operators/train.js';
import { crossEntropy } from '../src/core/forward.js';

/** A small frozen conv backbone with a trainable head: enough to exercise both paths. */
function tinyClassifier(seed = 1): Classifier {
  const backbone = tfl.sequential({
    layers: [
      // Seeded: an unlucky random init can leave every relu dead on dark images, and the test must not depend on luck.
      tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3, activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed }) }),
      tfl.layers.batchNormalization(),
      tfl.layers.globalAveragePooling2d({}),
    ],
  });
  backbone.trainable = false;
  return { name: 'tiny', inputSize: 8, preprocessing: 'unit', classes: 2, backbone, head: denseHead(4, 2, { hidden: [8], dropout: 0.1, seed }), weights: 'random' };
}

/** Bright images are class 0, dark ones class 1. */
function batches(count: number, size = 16): ImageBatch[] {
  const random = randomFor(3, 'batches');
  return Array.from({ length: count }, (_, b) => {
    const y = Int32Array.from({ length: size }, () => (random() < 0.5 ? 0 : 1));
    const x = new Uint8Array(size * 8 * 8 * 3);
    for (let i = 0; i < x.length; i++) {
      const label = y[Math.floor(i / (8 * 8 * 3))]!;
      x[i] = Math.floor((label === 0 ? 150 : 0) + random() * 100);
    }
    return { x, shape: [size, 8, 8, 3], y, paths: Array.from(y, (_, i) => `b${b}/${i}`) };
  });
}

describe('train', () => {
  it('lowers the loss and leaks no tensor across steps', async () => {
    const model = tinyClassifier();
    const optimizer = tf.train.adam(0.05);
    const data = batches(40);
    await lastValueFrom(from(data.slice(0, 1)).pipe(train(model, optimizer))); // Adam makes its slots on the first step
    const before = tf.memory().numTensors;
    const steps = await lastValueFrom(from(data.slice(1)).pipe(train(model, optimizer), toArray()));
    expect(tf.memory().numTensors).toBe(before);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const losses = steps.map((s) => s.lossSum / s.labels.length);
    expect(mean(losses.slice(-5))).toBeLessThan(0.5 * mean(losses.slice(0, 5)));
    expect(steps.at(-1)!.step).toBe(39);
    expect(steps[0]!.probs).toHaveLength(16 * 2);
    optimizer.dispose();
    disposeClassifier(model);
  });

  it('keeps the frozen backbone frozen, batch-norm statistics included', async () => {
    const model = tinyClassifier();
    const snapshot = () => model.backbone!.getWeights().map((w) => Array.from(w.dataSync()));
    const before = snapshot();
    const optimizer = tf.train.adam(0.05);
    await lastValueFrom(from(batches(3)).pipe(train(model, optimizer)));
    expect(snapshot()).toEqual(before);
    optimizer.dispose();
    disposeClassifier(model);
  });
});

describe('train with class weights and L2', () => {
  it('balanced weights make every class count the same', () => {
    expect(Array.from(balancedClassWeights([0, 0, 0, 1], 3))).toEqual([4 / 9, 4 / 3, 0].map(Math.fround));
  });

  it('still learns, reports plain cross-entropy, and leaks nothing', async () => {
    const model = tinyClassifier();
    const optimizer = tf.train.adam(0.05);
    const data = batches(20);
    const options = { classWeights: balancedClassWeights(data.flatMap((b) => Array.from(b.y)), 2), l2: 1e-3 };
    await lastValueFrom(from(data.slice(0, 1)).pipe(train(model, optimizer, options)));
    const before = tf.memory().numTensors;
    const steps = await lastValueFrom(from(data.slice(1)).pipe(train(model, optimizer, options), toArray()));
    expect(tf.memory().numTensors).toBe(before);
    for (const s of steps) {
      let ce = 0;
      s.labels.forEach((label, row) => (ce += crossEntropy(s.probs, row, 2, label)));
      expect(s.lossSum).toBeCloseTo(ce, 4);
    }
    expect(steps.at(-1)!.lossSum).toBeLessThan(steps[0]!.lossSum);
    optimizer.dispose();
    disposeClassifier(model);
  });
});

describe('predict', () => {
  it('emits per-image probabilities and loss in inference mode, and leaks no tensor', async () => {
    const model = tinyClassifier();
    const data = batches(5, 7);
    const before = tf.memory().numTensors;
    const out = await lastValueFrom(from(data).pipe(predict(model), toArray()));
    expect(tf.memory().numTensors).toBe(before);
    expect(out).toHaveLength(5);
    for (const p of out) {
      expect(p.probs).toHaveLength(7 * 2);
      for (let r = 0; r < 7; r++) expect(p.probs[2 * r]! + p.probs[2 * r + 1]!).toBeCloseTo(1, 5);
      expect(p.lossSum).toBeGreaterThan(0);
    }
    const again = await lastValueFrom(from(data).pipe(predict(model), toArray()));
    expect(again.map((p) => Array.from(p.probs))).toEqual(out.map((p) => Array.from(p.probs)));
    disposeClassifier(model);
  });
});

describe('train with label smoothing', () => {
  /** Mean probability of the true class over the last steps of a long run on separable data. */
  async function trueClassConfidence(labelSmoothing: number): Promise<number> {
    const model = tinyClassifier();
    const optimizer = tf.train.adam(0.05);
    const data = batches(12);
    const epochs = Array.from({ length: 8 }, () => data).flat();
    await lastValueFrom(from(epochs.slice(0, 1)).pipe(train(model, optimizer, { labelSmoothing })));
    const before = tf.memory().numTensors;
    const steps = await lastValueFrom(from(epochs.slice(1)).pipe(train(model, optimizer, { labelSmoothing }), toArray()));
    expect(tf.memory().numTensors).toBe(before);
    const tail = steps.slice(-12);
    let sum = 0;
    let count = 0;
    for (const s of tail) s.labels.forEach((label, row) => ((sum += s.probs[row * 2 + label]!), count++));
    optimizer.dispose();
    disposeClassifier(model);
    return sum / count;
  }

  it('keeps the head from growing certain: with ε = 0.3 the true class settles near 1 − ε/2, without it near 1', async () => {
    const smoothed = await trueClassConfidence(0.3);
    const plain = await trueClassConfidence(0);
    expect(plain).toBeGreaterThan(0.95);
    expect(smoothed).toBeGreaterThan(0.7);
    expect(smoothed).toBeLessThan(0.9);
  });

  it('refuses ε outside [0, 1)', () => {
    const model = tinyClassifier();
    const optimizer = tf.train.adam(0.05);
    expect(() => train(model, optimizer, { labelSmoothing: 1 })).toThrow(/label smoothing must be in \[0, 1\), got 1/);
    expect(() => train(model, optimizer, { labelSmoothing: -0.1 })).toThrow(/label smoothing/);
    optimizer.dispose();
    disposeClassifier(model);
  });
});
