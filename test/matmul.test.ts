import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { relativeDifference } from '../src/core/difference.js';
import { createRandom } from '../src/core/random.js';

const active = tf.getBackend();
afterAll(() => tf.setBackend(active));

const random = createRandom(7);
const values = (shape: number[]) => Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => random() * 2 - 1);

async function on(backend: string, f: () => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const out = tf.tidy(f);
  const arrays = out.map((t) => t.dataSync() as Float32Array);
  tf.dispose(out);
  return arrays;
}

// [a's shape, b's shape] as stored; the product transposes them as each case says
const cases = [
  { a: [33, 70], b: [33, 11], transposeA: true, transposeB: false },
  { a: [70, 33], b: [11, 33], transposeA: false, transposeB: true },
  { a: [33, 70], b: [11, 33], transposeA: true, transposeB: true },
  { a: [70, 33], b: [33, 11], transposeA: false, transposeB: false },
  { a: [3, 33, 7], b: [3, 33, 5], transposeA: true, transposeB: false },
  { a: [3, 7, 33], b: [1, 5, 33], transposeA: false, transposeB: true },
];

describe(`matMul with transposed operands on ${active} (transposed first on wasm) matches the cpu backend`, () => {
  it.each(cases)('$a × $b, transposeA $transposeA, transposeB $transposeB', async ({ a, b, transposeA, transposeB }) => {
    const [av, bv] = [values(a), values(b)];
    const run = () => [tf.matMul(tf.tensor(av, a), tf.tensor(bv, b), transposeA, transposeB)];
    const [want] = await on('cpu', run);
    const before = tf.memory().numTensors;
    const [got] = await on(active, run);
    expect(tf.memory().numTensors).toBe(before);
    expect(got!.length).toBe(want!.length);
    expect(relativeDifference(want!, got!).relative).toBeLessThan(1e-5);
  });

  it("gives a dense layer's weight and input gradients as the cpu backend does", async () => {
    const [xv, wv, dyv] = [values([32, 64]), values([64, 10]), values([32, 10])];
    const run = () => {
      const [x, w, dy] = [tf.tensor2d(xv, [32, 64]), tf.tensor2d(wv, [64, 10]), tf.tensor2d(dyv, [32, 10])];
      const [dx, dw] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(tf.matMul(p, q), dy)))([x, w]);
      return [dx!, dw!];
    };
    const [dxCpu, dwCpu] = await on('cpu', run);
    const [dx, dw] = await on(active, run);
    expect(relativeDifference(dxCpu!, dx!).relative).toBeLessThan(1e-5);
    expect(relativeDifference(dwCpu!, dw!).relative).toBeLessThan(1e-5);
  });
});
