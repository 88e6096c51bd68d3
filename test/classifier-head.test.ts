import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { denseHead } from '../src/models/classifier.js';
import { createModel, disposeClassifier } from '../src/models/index.js';
import { L2Normalization } from '../src/models/layers.js';

describe('denseHead with featureNorm', () => {
  it('scales every feature vector to the given length, an all-zero one stays zero, nothing leaks', () => {
    const head = denseHead(3, 2, { featureNorm: 5, seed: 1 });
    const layer = head.getLayer('head_l2_normalization') as L2Normalization;
    const before = tf.memory().numTensors;
    const out = tf.tidy(() => layer.apply(tf.tensor2d([[3, 4, 0], [0, 0, 0], [-1, 2, 2]])) as tf.Tensor);
    expect(tf.memory().numTensors).toBe(before + 1);
    const rows = out.arraySync() as number[][];
    out.dispose();
    expect(rows[0]).toEqual([3, 4, 0].map((v) => expect.closeTo(v, 5)));
    expect(rows[1]).toEqual([0, 0, 0]);
    expect(rows[2]).toEqual([-1, 2, 2].map((v) => expect.closeTo((5 * v) / 3, 5)));
    head.dispose();
  });

  it('gives the same logits for a feature vector and any positive multiple of it', () => {
    const head = denseHead(4, 3, { featureNorm: 10, seed: 2 });
    const plain = denseHead(4, 3, { seed: 2 });
    const logits = (model: tfl.LayersModel, x: number[][]) => tf.tidy(() => (model.predict(tf.tensor2d(x)) as tf.Tensor).arraySync() as number[][]);
    const [a, b] = logits(head, [[1, 2, 0.5, 3], [7, 14, 3.5, 21]]);
    expect(b).toEqual(a!.map((v) => expect.closeTo(v, 4)));
    const [c, d] = logits(plain, [[1, 2, 0.5, 3], [7, 14, 3.5, 21]]);
    expect(Math.abs(d![0]! - c![0]!)).toBeGreaterThan(1e-3); // without it, scale changes the logits
    head.dispose();
    plain.dispose();
  });

  it('survives saving and loading the head (the layer is registered for serialization)', async () => {
    const head = denseHead(6, 4, { featureNorm: 7, seed: 3 });
    let artifacts: tf.io.ModelArtifacts | undefined;
    await head.save(tf.io.withSaveHandler(async (a) => ((artifacts = a), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } })));
    const loaded = await tfl.loadLayersModel(tf.io.fromMemory(artifacts!));
    const restored = loaded.getLayer('head_l2_normalization');
    expect(restored).toBeInstanceOf(L2Normalization);
    expect((restored as L2Normalization).scale).toBe(7);
    const x = tf.tensor2d([[1, -2, 3, 0.5, 4, 2], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]]);
    const [p, q] = [head.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor];
    expect(Array.from(q.dataSync())).toEqual(Array.from(p.dataSync()).map((v) => expect.closeTo(v, 5)));
    tf.dispose([x, p, q]);
    head.dispose();
    loaded.dispose();
  });

  it('refuses a length that is not positive', () => {
    expect(() => denseHead(3, 2, { featureNorm: 0 })).toThrow(/feature norm must be a positive number, got 0/);
    expect(() => denseHead(3, 2, { featureNorm: Number.NaN })).toThrow(/feature norm/);
  });
});

describe('createModel with featureNorm', () => {
  it('puts the normalisation in the head only when asked', async () => {
    const layerNames = async (featureNorm?: number) => {
      const model = await createModel('mobilenetv1', { classes: 3, weights: 'none', inputSize: 32, alpha: 0.25, ...(featureNorm !== undefined ? { featureNorm } : {}) });
      const names = model.head.layers.map((l) => l.name);
      const scale = names.includes('head_l2_normalization') ? (model.head.getLayer('head_l2_normalization') as L2Normalization).scale : null;
      disposeClassifier(model);
      return { names, scale };
    };
    expect((await layerNames(10)).scale).toBe(10);
    expect((await layerNames()).names).not.toContain('head_l2_normalization');
  });
});
