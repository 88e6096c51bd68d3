import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { createModel, disposeClassifier } from '../src/models/index.js';
import { weightsCacheDir } from '../src/models/weights.js';
import { writeKerasH5 } from './h5-writer.js';

describe('the imagenet label', () => {
  it('a file in the weights cache that no published hash verified is not `imagenet` (and so not its feature cache)', async () => {
    // MobileNetV2-0.75 has no published hash in the registry: whatever lies in the cache under its name is unverified
    const file = 'mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.75_224_no_top.h5';
    const random = await createModel('mobilenetv2', { classes: 2, alpha: 0.75, inputSize: 96, weights: 'none' });
    await mkdir(weightsCacheDir(), { recursive: true });
    await writeKerasH5(random.backbone!, join(weightsCacheDir(), file));
    disposeClassifier(random);
    const model = await createModel('mobilenetv2', { classes: 2, alpha: 0.75, inputSize: 96, weights: 'imagenet' });
    expect(model.weights).not.toMatch(/^imagenet/);
    expect(model.weights).toContain(file);
    disposeClassifier(model);
  });

  it('the embedded file, verified by its hash, is `imagenet`', async () => {
    const model = await createModel('mobilenetv2', { classes: 2, inputSize: 96 });
    expect(model.weights).toBe('imagenet (mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5)');
    disposeClassifier(model);
  });

  it('a random backbone (--weights none) is drawn from the seed: the same seed the same network (and one feature cache), another seed another', async () => {
    const before = tf.memory().numTensors;
    const build = (seed: number) => createModel('mobilenetv1', { classes: 2, alpha: 0.25, inputSize: 32, weights: 'none', seed });
    const [a, b, c] = [await build(3), await build(3), await build(4)];
    try {
      expect([a.weights, c.weights]).toEqual(['none (random backbone, seed 3)', 'none (random backbone, seed 4)']);
      const values = (m: typeof a) => m.backbone!.getWeights().map((w) => w.dataSync());
      const [va, vb, vc] = [values(a), values(b), values(c)];
      expect(va.every((w, i) => w.every((x, j) => x === vb[i]![j]))).toBe(true);
      const kernels = a.backbone!.weights.map((w, i) => (/kernel$/.test(w.originalName) ? i : -1)).filter((i) => i >= 0);
      expect(kernels.length).toBeGreaterThan(10);
      expect(kernels.every((i) => va[i]!.some((x, j) => x !== vc[i]![j]))).toBe(true);
    } finally {
      [a, b, c].forEach(disposeClassifier);
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
