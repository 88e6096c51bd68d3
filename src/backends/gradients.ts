import * as tf from '@tensorflow/tfjs-core';
import { compositeKernelFunc, registerCompositeKernel } from './composite-kernel.js';

/**
 * Convolution gradient kernels built from forward ops (pad, strided slice, transpose, matMul), for
 * backends that lack them: tfjs-backend-wasm has no Conv2DBackpropFilter and no depthwise backprop
 * kernels (tfjs#8474).
 */

type Padding = 'same' | 'valid' | number;

export interface ConvGeometry {
  strides: [number, number];
  /** [top, left] padding of the input. */
  before: [number, number];
  /** The input padded so that every output position reads a full window. */
  paddedShape: [number, number];
}

function pair(value: number | [number, number]): [number, number] {
  return Array.isArray(value) ? value : [value, value];
}

function geometry(inShape: number[], kernel: [number, number], outShape: number[], strides: [number, number], pad: Padding): ConvGeometry {
  const [, h, w] = inShape as [number, number, number, number];
  const [, oh, ow] = outShape as [number, number, number, number];
  const needH = (oh - 1) * strides[0] + kernel[0];
  const needW = (ow - 1) * strides[1] + kernel[1];
  let before: [number, number];
  if (pad === 'valid') before = [0, 0];
  else if (pad === 'same') before = [Math.floor(Math.max(needH - h, 0) / 2), Math.floor(Math.max(needW - w, 0) / 2)];
  else before = [pad, pad];
  return { strides, before, paddedShape: [Math.max(needH, h + before[0]), Math.max(needW, w + before[1])] };
}

/** x padded as the convolution saw it, sized to cover every window. */
function padInput(x: tf.Tensor4D, g: ConvGeometry): tf.Tensor4D {
  const [, h, w] = x.shape;
  return tf.pad(x, [
    [0, 0],
    [g.before[0], g.paddedShape[0] - h - g.before[0]],
    [g.before[1], g.paddedShape[1] - w - g.before[1]],
    [0, 0],
  ]);
}

/** The input values that kernel tap (i, j) multiplied, for every output position: [N, OH, OW, C]. */
export function tap(padded: tf.Tensor4D, i: number, j: number, out: number[], g: ConvGeometry): tf.Tensor4D {
  const [n, , , c] = padded.shape;
  const [, oh, ow] = out as [number, number, number, number];
  return tf.stridedSlice(padded, [0, i, j, 0], [n, i + (oh - 1) * g.strides[0] + 1, j + (ow - 1) * g.strides[1] + 1, c], [1, g.strides[0], g.strides[1], 1]) as tf.Tensor4D;
}

/** dL/dfilter of conv2d: for each tap, (x at that tap)ᵀ · dy, one matMul per tap. */
export function conv2dFilterGradient(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: [number, number, number, number], strides: number | [number, number], pad: Padding): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, cin, cout] = filterShape;
    const g = geometry(x.shape, [kh, kw], dy.shape, pair(strides), pad);
    const padded = padInput(x, g);
    const dy2 = tf.reshape(dy, [-1, cout]);
    const taps: tf.Tensor2D[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        // A scope per tap frees its input-sized temporaries before the next tap makes its own.
        taps.push(tf.tidy(() => tf.matMul(tf.transpose(tf.reshape(tap(padded, i, j, dy.shape, g), [-1, cin])), dy2)));
      }
    }
    return tf.reshape(tf.stack(taps), [kh, kw, cin, cout]) as tf.Tensor4D;
  });
}

/** dL/dfilter of a depthwise conv with multiplier M: per tap, Σ x·dy over batch and positions. */
export function depthwiseFilterGradient(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: [number, number, number, number], strides: number | [number, number], pad: Padding): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, c, m] = filterShape;
    const g = geometry(x.shape, [kh, kw], dy.shape, pair(strides), pad);
    const padded = padInput(x, g);
    const dy5 = tf.reshape(dy, [-1, c, m]);
    const taps: tf.Tensor[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        taps.push(tf.tidy(() => tf.sum(tf.mul(tf.reshape(tap(padded, i, j, dy.shape, g), [-1, c, 1]), dy5), 0)));
      }
    }
    return tf.reshape(tf.stack(taps), [kh, kw, c, m]) as tf.Tensor4D;
  });
}

/**
 * Sends per-output-position values [N, OH, OW, C] of kernel tap (i, j) back to the padded-input
 * positions that tap read: stride gaps are made by interleaving zeros (reshape of a padded stack),
 * then the tap's offset by padding.
 */
export function placeTap(values: tf.Tensor4D, i: number, j: number, strides: [number, number], paddedShape: [number, number]): tf.Tensor4D {
  const [n, oh, ow, c] = values.shape;
  const [sh, sw] = strides;
  // Rows/columns reached by tap 0: 0, s, 2s, … (zeros between).
  const spreadH = (oh - 1) * sh + 1;
  const spreadW = (ow - 1) * sw + 1;
  let spread = values;
  if (sh > 1 || sw > 1) {
    const gaps = tf.pad(tf.reshape(values, [n, oh, 1, ow, 1, c]), [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
    spread = tf.slice(tf.reshape(gaps, [n, oh * sh, ow * sw, c]) as tf.Tensor4D, [0, 0, 0, 0], [n, spreadH, spreadW, c]);
  }
  return tf.pad(spread, [
    [0, 0],
    [i, paddedShape[0] - spreadH - i],
    [j, paddedShape[1] - spreadW - j],
    [0, 0],
  ]);
}

/** dL/dx of a depthwise conv: every tap sends dy·w back to the input positions it read. */
export function depthwiseInputGradient(xShape: [number, number, number, number], dy: tf.Tensor4D, filter: tf.Tensor4D, strides: number | [number, number], pad: Padding): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, c] = xShape;
    const [kh, kw, , m] = filter.shape;
    const [, oh, ow] = dy.shape;
    const g = geometry(xShape, [kh, kw], dy.shape, pair(strides), pad);
    const dy5 = tf.reshape(dy, [n, oh, ow, c, m]);
    let total: tf.Tensor4D = tf.zeros([n, g.paddedShape[0], g.paddedShape[1], c]);
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const previous = total;
        // A scope per tap keeps one input-sized sum alive, not every tap's temporaries.
        total = tf.tidy(() => {
          const weights = tf.reshape(tf.slice(filter, [i, j, 0, 0], [1, 1, c, m]), [1, 1, 1, c, m]);
          const contribution = tf.sum(tf.mul(dy5, weights), 4) as tf.Tensor4D;
          return tf.add(previous, placeTap(contribution, i, j, g.strides, g.paddedShape));
        });
        previous.dispose();
      }
    }
    return tf.slice(total, [0, g.before[0], g.before[1], 0], [n, h, w, c]);
  });
}

/**
 * dL/dx of conv2d as a forward convolution: dy with stride gaps filled by zeros, padded by
 * kernel-1 all round, convolved with the filter turned 180° and its channel axes swapped; the rows
 * and columns of the padded input that x occupies are then cut out.
 */
export function conv2dInputGradient(xShape: [number, number, number, number], dy: tf.Tensor4D, filter: tf.Tensor4D, strides: number | [number, number], pad: Padding): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, cin] = xShape;
    const [kh, kw] = filter.shape;
    const [, oh, ow] = dy.shape;
    const g = geometry(xShape, [kh, kw], dy.shape, pair(strides), pad);
    const spread: [number, number] = [(oh - 1) * g.strides[0] + 1, (ow - 1) * g.strides[1] + 1];
    const dilated = placeTap(dy, 0, 0, g.strides, spread);
    // Turning both spatial axes reverses the flattened tap index; gather copies whole rows, where
    // wasm's Reverse kernel was slower than the convolution itself.
    const [, , fin, fout] = filter.shape;
    const taps = tf.tensor1d(Array.from({ length: kh * kw }, (_, i) => kh * kw - 1 - i), 'int32');
    const turned = tf.transpose(tf.reshape(tf.gather(tf.reshape(filter, [kh * kw, fin * fout]), taps), [kh, kw, fin, fout]), [0, 1, 3, 2]) as tf.Tensor4D;
    // Gradient for padded-input rows 0 … spread+kh-2; rows past them were read by no window.
    const full = tf.conv2d(tf.pad(dilated, [[0, 0], [kh - 1, kh - 1], [kw - 1, kw - 1], [0, 0]]), turned, 1, 'valid');
    const reached = tf.pad(full, [[0, 0], [0, Math.max(0, g.before[0] + h - full.shape[1])], [0, Math.max(0, g.before[1] + w - full.shape[2])], [0, 0]]);
    return tf.slice(reached, [0, g.before[0], g.before[1], 0], [n, h, w, cin]);
  });
}

interface ConvAttrs {
  strides: number | [number, number];
  pad: Padding;
  dilations?: number | [number, number];
  dataFormat?: string;
  filterShape?: [number, number, number, number];
  inputShape?: [number, number, number, number];
}

function isSimple(attrs: ConvAttrs): boolean {
  return (attrs.dataFormat ?? 'NHWC') === 'NHWC' && pair(attrs.dilations ?? 1).every((d) => d === 1) && (typeof attrs.pad === 'string' || typeof attrs.pad === 'number');
}

/** A convolution stand-in, refusing what the composite formulas do not cover. */
function composite(kernelName: string, backendName: string, compute: (inputs: Record<string, tf.Tensor>, attrs: ConvAttrs) => tf.Tensor): void {
  registerCompositeKernel<ConvAttrs>(kernelName, backendName, (inputs, attrs) => {
    if (!isSimple(attrs)) throw new Error(`${kernelName} stand-in supports NHWC, no dilation and same/valid/numeric padding`);
    return compute(inputs, attrs);
  });
}

const wrapped = new Set<string>();

/**
 * tfjs-backend-wasm's own Conv2DBackpropInput (XNNPACK deconvolution) is several times slower than
 * the same gradient as a forward convolution (on 2 EPYC cores: dy 8×32×32×64, 3×3×64×64 filter,
 * 2.6 s → 0.29 s; 1×1 filters ~2×) — it was a third of a VGG-19 train step. Stride-1 cases take the forward
 * formulation; strided ones, where the zero-filled input wastes most of that work, keep the native
 * kernel. Chosen by backend name: speed cannot be probed reliably at start-up.
 */
function fasterStrideOneInputGradient(backendName: string): void {
  const native = tf.getKernel('Conv2DBackpropInput', backendName);
  if (!native || wrapped.has(backendName)) return;
  wrapped.add(backendName);
  const forward = compositeKernelFunc<ConvAttrs>(({ dy, filter }, a) => conv2dInputGradient(a.inputShape!, dy as tf.Tensor4D, filter as tf.Tensor4D, a.strides, a.pad));
  tf.unregisterKernel('Conv2DBackpropInput', backendName);
  tf.registerKernel({
    ...native,
    kernelFunc: (args) => {
      const a = args.attrs as unknown as ConvAttrs;
      return isSimple(a) && pair(a.strides).every((s) => s === 1) ? forward(args) : native.kernelFunc(args);
    },
  });
}

/**
 * Registers the stand-in kernels for `backendName` where it lacks them, so every path that needs
 * them (tfjs' registered gradients, and the fused-convolution op whose gradient is computed inside
 * the op) finds one. A backend with its own kernels keeps them.
 */
export function installConvolutionGradients(backendName: string): void {
  const missing = (kernel: string) => tf.getKernel(kernel, backendName) === undefined;
  if (missing('Conv2DBackpropFilter')) {
    composite('Conv2DBackpropFilter', backendName, ({ x, dy }, a) => conv2dFilterGradient(x as tf.Tensor4D, dy as tf.Tensor4D, a.filterShape!, a.strides, a.pad));
  }
  if (missing('DepthwiseConv2dNativeBackpropFilter')) {
    composite('DepthwiseConv2dNativeBackpropFilter', backendName, ({ x, dy }, a) => depthwiseFilterGradient(x as tf.Tensor4D, dy as tf.Tensor4D, a.filterShape!, a.strides, a.pad));
  }
  if (backendName === 'wasm') fasterStrideOneInputGradient(backendName);
  if (missing('DepthwiseConv2dNativeBackpropInput')) {
    composite('DepthwiseConv2dNativeBackpropInput', backendName, ({ dy, filter }, a) => depthwiseInputGradient(a.inputShape!, dy as tf.Tensor4D, filter as tf.Tensor4D, a.strides, a.pad));
  }
}
