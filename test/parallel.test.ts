import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ParallelModel, splitRows } from '../src/backends/parallel.js';
import { ChannelScale } from '../src/models/layers.js';
import { normalize } from '../src/core/normalize.js';
import { createRandom } from '../src/core/random.js';

const random = createRandom(7);
const values = (n: number) => Float32Array.from({ length: n }, () => random() * 2 - 1);

/** A small conv net with one of rxcnn's custom layers, so the workers must know those classes. */
function smallModel(): tfl.LayersModel {
  const input = tfl.input({ shape: [16, 16, 3] });
  let x = new ChannelScale({ scales: [0.5, 1, 2] }).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization({ movingMeanInitializer: tfl.initializers.randomNormal({ seed: 2 }) }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', depthwiseInitializer: tfl.initializers.glorotUniform({ seed: 3 }) }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.globalAveragePooling2d({}).apply(x) as tfl.SymbolicTensor;
  const output = tfl.layers.dense({ units: 4, kernelInitializer: tfl.initializers.glorotUniform({ seed: 4 }) }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: output });
}

/** A layer the workers have never heard of. */
class UnknownToWorkers extends tfl.layers.Layer {
  static className = 'UnknownToWorkers';
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return Array.isArray(inputs) ? inputs[0]! : inputs;
  }
}
tf.serialization.registerClass(UnknownToWorkers);

describe('splitRows', () => {
  it('splits a batch into contiguous, nearly equal slices, never more than there are rows', () => {
    expect(splitRows(32, 2)).toEqual([[0, 16], [16, 32]]);
    expect(splitRows(5, 2)).toEqual([[0, 2], [2, 5]]);
    expect(splitRows(1, 4)).toEqual([[0, 1]]);
  });
});

describe('ParallelModel', () => {
  const model = smallModel();
  let pool: ParallelModel;
  beforeAll(async () => {
    pool = await ParallelModel.create(model, { workers: 2 });
  });
  afterAll(async () => {
    await pool.dispose();
    model.dispose();
  });

  /** The pool's answers equal the model's, rows in order, for a batch of several rows and of one; no tensor left behind. */
  async function expectSamePredictions(parallel: ParallelModel): Promise<void> {
    for (const rows of [5, 1]) {
      const x = tf.tensor4d(values(rows * 16 * 16 * 3), [rows, 16, 16, 3]);
      const before = tf.memory().numTensors;
      const got = await parallel.predict(x);
      const want = model.predict(x) as tf.Tensor;
      expect(got.shape).toEqual([rows, 4]);
      const [g, w] = [got.dataSync(), want.dataSync()];
      for (let i = 0; i < w.length; i++) expect(g[i]).toBeCloseTo(w[i]!, 5);
      tf.dispose([got, want]);
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
    }
  }

  it('predicts what the model predicts, rows in order, with each worker on its own backend', async () => {
    expect(pool.size).toBe(2);
    expect(pool.backend).toBe('wasm');
    await expectSamePredictions(pool);
  });

  it('with the calling thread computing a slice too, still predicts what the model predicts, in order', async () => {
    const hybrid = await ParallelModel.create(model, { workers: 1, mainThread: true });
    try {
      await expectSamePredictions(hybrid);
    } finally {
      await hybrid.dispose();
    }
  });

  it('predicts 8-bit images as the model predicts them normalised here, the workers preprocessing their slices', async () => {
    const hybrid = await ParallelModel.create(model, { workers: 1, mainThread: true });
    try {
      for (const parallel of [pool, hybrid]) {
        for (const preprocessing of ['symmetric', 'caffe'] as const) {
          const rows = 5;
          const images = { x: Uint8Array.from({ length: rows * 16 * 16 * 3 }, () => Math.floor(random() * 256)), shape: [rows, 16, 16, 3] as [number, number, number, number] };
          const before = tf.memory().numTensors;
          const got = await parallel.predictImages(images, preprocessing);
          const x = normalize(images, preprocessing);
          const want = model.predict(x) as tf.Tensor;
          expect(got.shape).toEqual([rows, 4]);
          expect(tf.tidy(() => tf.max(tf.abs(tf.sub(got, want))).dataSync()[0])).toBeLessThan(1e-4);
          tf.dispose([got, want, x]);
          expect(tf.memory().numTensors).toBe(before);
        }
        const short = { x: new Uint8Array(2 * 16 * 16 * 3 - 1), shape: [2, 16, 16, 3] as [number, number, number, number] };
        await expect(parallel.predictImages(short, 'symmetric')).rejects.toThrow(/^predictImages: 1535 bytes do not make a batch of shape \[2, 16, 16, 3\]$/);
      }
    } finally {
      await hybrid.dispose();
    }
  });

  it('answers concurrent requests each with its own rows', async () => {
    const inputs = [0, 1, 2].map(() => tf.tensor4d(values(3 * 16 * 16 * 3), [3, 16, 16, 3]));
    const got = await Promise.all(inputs.map((x) => pool.predict(x)));
    inputs.forEach((x, i) => {
      const want = model.predict(x) as tf.Tensor;
      expect(tf.max(tf.abs(tf.sub(got[i]!, want))).dataSync()[0]).toBeLessThan(1e-5);
      want.dispose();
    });
    tf.dispose([...inputs, ...got]);
  });

  it('refuses an empty batch and a disposed pool with one line', async () => {
    const empty = tf.zeros([0, 16, 16, 3]);
    await expect(pool.predict(empty)).rejects.toThrow(/at least one row/);
    empty.dispose();
    const other = await ParallelModel.create(model, { workers: 1 });
    await other.dispose();
    const x = tf.zeros([1, 16, 16, 3]);
    await expect(other.predict(x)).rejects.toThrow(/disposed/);
    x.dispose();
  });
});

describe('ParallelModel.create', () => {
  it('fails with the workers\' one-line reason when they cannot rebuild the model', async () => {
    const input = tfl.input({ shape: [4] });
    const model = tfl.model({ inputs: input, outputs: new UnknownToWorkers({}).apply(input) as tfl.SymbolicTensor });
    await expect(ParallelModel.create(model, { workers: 1 })).rejects.toThrow(/^worker could not load the model: .*UnknownToWorkers/);
    model.dispose();
  });

  it('refuses a worker count that is not a positive integer', async () => {
    await expect(ParallelModel.create(tfl.sequential({ layers: [tfl.layers.dense({ units: 1, inputShape: [1] })] }), { workers: 0 })).rejects.toThrow(/positive integer/);
  });
});
