import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { conv2dFilterGradient, depthwiseFilterGradient, depthwiseInputGradient } from '../src/backends/gradients.js';
import { createRandom } from '../src/core/random.js';

type Pad = 'same' | 'valid';
type Shape4 = [number, number, number, number];
const active = tf.getBackend();
afterAll(() => tf.setBackend(active));

const random = createRandom(42);
const values = (shape: number[]) => Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => random() * 2 - 1);
const outSide = (size: number, k: number, stride: number, pad: Pad) => Math.ceil((pad === 'same' ? size : size - k + 1) / stride);

/** Runs `f` on a backend and returns plain arrays, so two backends' results can be compared. */
async function on(backend: string, f: () => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const out = tf.tidy(f);
  const arrays = out.map((t) => t.dataSync() as Float32Array);
  tf.dispose(out);
  return arrays;
}

function relativeError(got: Float32Array, want: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i]! - want[i]!));
    scale = Math.max(scale, Math.abs(want[i]!));
  }
  return diff / (scale || 1);
}

/** Gradients of Σ r·op(x, f) with respect to x and f, through tfjs' registered gradients, plus `direct` ones. */
function gradients(op: (x: tf.Tensor4D, f: tf.Tensor4D) => tf.Tensor4D, x: tf.Tensor4D, f: tf.Tensor4D, r: tf.Tensor4D): tf.Tensor[] {
  const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(op(a as tf.Tensor4D, b as tf.Tensor4D), r)))([x, f]);
  return [dx!, df!];
}

const kernels: Array<[number, number]> = [[1, 1], [3, 3], [5, 5], [1, 7], [7, 1]];
const convCases = kernels.flatMap((k) => [1, 2].flatMap((stride) => (['same', 'valid'] as Pad[]).map((pad) => ({ k, stride, pad }))));

describe(`convolution gradients on ${active} match the cpu backend's kernels`, () => {
  it.each(convCases)('conv2d kernel $k, stride $stride, $pad', async ({ k, stride, pad }) => {
    const xShape: Shape4 = [2, 9, 10, 3];
    const fShape: Shape4 = [k[0], k[1], 3, 4];
    const rShape: Shape4 = [2, outSide(9, k[0], stride, pad), outSide(10, k[1], stride, pad), 4];
    const [xv, fv, rv] = [values(xShape), values(fShape), values(rShape)];
    const run = () => {
      const [x, f, r] = [tf.tensor4d(xv, xShape), tf.tensor4d(fv, fShape), tf.tensor4d(rv, rShape)];
      return [...gradients((a, b) => tf.conv2d(a, b, stride, pad), x, f, r), conv2dFilterGradient(x, r, fShape, stride, pad)];
    };
    const [dxCpu, dfCpu] = await on('cpu', run);
    const [dx, df, direct] = await on(active, run);
    expect(relativeError(dx!, dxCpu!)).toBeLessThan(1e-4);
    expect(relativeError(df!, dfCpu!)).toBeLessThan(1e-4);
    expect(relativeError(direct!, dfCpu!)).toBeLessThan(1e-4);
  });

  const depthwiseCases = [3, 5].flatMap((k) => [1, 2].flatMap((multiplier) => [1, 2].flatMap((stride) => (['same', 'valid'] as Pad[]).map((pad) => ({ k, multiplier, stride, pad })))));
  it.each(depthwiseCases)('depthwise kernel $k, multiplier $multiplier, stride $stride, $pad', async ({ k, multiplier, stride, pad }) => {
    const xShape: Shape4 = [2, 11, 8, 3];
    const fShape: Shape4 = [k, k, 3, multiplier];
    const rShape: Shape4 = [2, outSide(11, k, stride, pad), outSide(8, k, stride, pad), 3 * multiplier];
    const [xv, fv, rv] = [values(xShape), values(fShape), values(rShape)];
    const run = () => {
      const [x, f, r] = [tf.tensor4d(xv, xShape), tf.tensor4d(fv, fShape), tf.tensor4d(rv, rShape)];
      return [
        ...gradients((a, b) => tf.depthwiseConv2d(a, b, stride, pad), x, f, r),
        depthwiseInputGradient(xShape, r, f, stride, pad),
        depthwiseFilterGradient(x, r, fShape, stride, pad),
      ];
    };
    const [dxCpu, dfCpu] = await on('cpu', run);
    const [dx, df, directX, directF] = await on(active, run);
    for (const [got, want] of [[dx, dxCpu], [df, dfCpu], [directX, dxCpu], [directF, dfCpu]] as const) {
      expect(relativeError(got!, want!)).toBeLessThan(1e-4);
    }
  });
});

describe('the stand-in kernels', () => {
  it('leave no tensor behind', () => {
    const x = tf.tensor4d(values([2, 8, 8, 3]), [2, 8, 8, 3]);
    const f = tf.tensor4d(values([3, 3, 3, 2]), [3, 3, 3, 2]);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.add(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'), tf.sum(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'valid')))))([x, f]);
      tf.dispose(grads);
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, f]);
  });
});
