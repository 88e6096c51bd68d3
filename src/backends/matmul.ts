import * as tf from '@tensorflow/tfjs-core';
import { compositeKernelFunc } from './composite-kernel.js';

interface MatMulAttrs {
  transposeA: boolean;
  transposeB: boolean;
}

/** `x` with its last two axes swapped. */
function swapLastAxes(x: tf.Tensor): tf.Tensor {
  const perm = [...x.shape.keys()];
  perm.push(...perm.splice(-2).reverse());
  return tf.transpose(x, perm);
}

const wrapped = new Set<string>();

/**
 * tfjs-backend-wasm 4.22 computes a matMul with a transposed operand on a slow path several times
 * slower than the same product with that operand transposed first (on 2 EPYC cores, the weight
 * gradient of a 1280 → 101 dense layer at batch 32, xᵀ·dy: ~4 ms against ~1 ms), and every dense
 * layer's gradient is such a product: it was half of a head-training step on cached features. So
 * transposed operands are transposed explicitly, then the native kernel multiplies. Chosen by
 * backend name, as the convolution input gradient's stand-in is: speed cannot be probed reliably
 * at start-up.
 */
export function installFasterTransposedMatMul(backendName: string): void {
  const native = tf.getKernel('BatchMatMul', backendName);
  if (backendName !== 'wasm' || !native || wrapped.has(backendName)) return;
  wrapped.add(backendName);
  const transposedFirst = compositeKernelFunc<MatMulAttrs>(({ a, b }, attrs) =>
    tf.tidy(() => tf.matMul(attrs.transposeA ? swapLastAxes(a!) : a!, attrs.transposeB ? swapLastAxes(b!) : b!)),
  );
  tf.unregisterKernel('BatchMatMul', backendName);
  tf.registerKernel({
    ...native,
    kernelFunc: (args) => {
      const attrs = args.attrs as unknown as MatMulAttrs;
      return attrs.transposeA || attrs.transposeB ? transposedFirst(args) : native.kernelFunc(args);
    },
  });
}
