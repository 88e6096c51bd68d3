import * as tf from '@tensorflow/tfjs-core';
import { registerCompositeKernel } from './composite-kernel.js';
import { placeTap, tap, type ConvGeometry } from './gradients.js';

interface MaxPoolGradAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'same' | 'valid' | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/**
 * dL/dx of a 2-D max pool: each window's dy goes to the first position (row-major) holding the
 * window's maximum, as the cpu and TensorFlow kernels do. Built from strided slices, comparisons
 * and padding; cells outside the input are -∞ so they never win.
 */
export function maxPoolInputGradient(dy: tf.Tensor4D, x: tf.Tensor4D, attrs: MaxPoolGradAttrs): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    const info = tf.backend_util.computePool2DInfo(x.shape, attrs.filterSize, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
    const { filterHeight: kh, filterWidth: kw, outHeight: oh, outWidth: ow } = info;
    const strides: [number, number] = [info.strideHeight, info.strideWidth];
    const before: [number, number] = [info.padInfo.top, info.padInfo.left];
    const paddedShape: [number, number] = [
      Math.max((oh - 1) * strides[0] + kh, h + before[0]),
      Math.max((ow - 1) * strides[1] + kw, w + before[1]),
    ];
    const g: ConvGeometry = { strides, before, paddedShape };
    const padded = tf.pad(x, [[0, 0], [before[0], paddedShape[0] - h - before[0]], [before[1], paddedShape[1] - w - before[1]], [0, 0]], -Infinity);
    const taps = Array.from({ length: kh * kw }, (_, k) => [Math.floor(k / kw), k % kw] as const);
    // Scopes per tap keep a few output-sized tensors alive at a time, not every tap's temporaries.
    let max = tap(padded, 0, 0, [n, oh, ow, c], g);
    for (const [i, j] of taps.slice(1)) {
      const previous = max;
      max = tf.tidy(() => tf.maximum(previous, tap(padded, i, j, [n, oh, ow, c], g)));
      previous.dispose();
    }
    // 1 where no earlier tap of the window has claimed the maximum yet.
    let unclaimed: tf.Tensor4D = tf.onesLike(max);
    let total: tf.Tensor4D = tf.zeros([n, paddedShape[0], paddedShape[1], c]);
    for (const [i, j] of taps) {
      const [previousUnclaimed, previousTotal] = [unclaimed, total];
      [unclaimed, total] = tf.tidy(() => {
        const wins = tf.mul(tf.cast(tf.equal(tap(padded, i, j, [n, oh, ow, c], g), max), 'float32'), previousUnclaimed) as tf.Tensor4D;
        return [tf.sub(previousUnclaimed, wins), tf.add(previousTotal, placeTap(tf.mul(dy, wins), i, j, strides, paddedShape))];
      });
      tf.dispose([previousUnclaimed, previousTotal]);
    }
    return tf.slice(total, [0, before[0], before[1], 0], [n, h, w, c]);
  });
}

/** Whether the active backend's MaxPoolGrad routes the gradient of an all-negative window. */
function maxPoolGradientIsCorrect(): boolean {
  try {
    return tf.tidy(() => {
      const input = tf.tensor4d([-3, -1, -2, -4], [1, 2, 2, 1]);
      const output = tf.maxPool(input, 2, 2, 'valid');
      const dx = tf.engine().runKernel('MaxPoolGrad', { dy: tf.onesLike(output), input, output }, { filterSize: 2, strides: 2, pad: 'valid' }) as tf.Tensor;
      return Array.from(dx.dataSync()).join() === '0,1,0,0';
    });
  } catch {
    return false;
  }
}

/**
 * Replaces the active backend's MaxPoolGrad by the composite one when it is missing or wrong.
 * Decided by behaviour, not by name: tfjs-backend-wasm 4.22 starts its running maximum at FLT_MIN
 * (the smallest positive float), so a window whose values are all ≤ 0 sends its gradient nowhere; a
 * tfjs release that fixes it, or any backend that gets it right, keeps its own (faster) kernel.
 * Returns whether it replaced the kernel.
 */
export function installMaxPoolGradient(): boolean {
  const backendName = tf.getBackend();
  if (maxPoolGradientIsCorrect()) return false;
  if (tf.getKernel('MaxPoolGrad', backendName)) tf.unregisterKernel('MaxPoolGrad', backendName);
  registerCompositeKernel<MaxPoolGradAttrs>('MaxPoolGrad', backendName, ({ dy, input }, attrs) => maxPoolInputGradient(dy as tf.Tensor4D, input as tf.Tensor4D, attrs));
  return true;
}
