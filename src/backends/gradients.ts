import * as tf from '@tensorflow/tfjs-core';

/**
 * Convolution gradient kernels built from forward ops (pad, strided slice, transpose, matMul), for
 * backends that lack them: tfjs-backend-wasm has no Conv2DBackpropFilter and no depthwise backprop
 * kernels (tfjs#8474).
 */

type Padding = 'same' | 'valid' | number;

interface ConvGeometry {
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
function tap(padded: tf.Tensor4D, i: number, j: number, out: number[], g: ConvGeometry): tf.Tensor4D {
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
        const xt = tf.transpose(tf.reshape(tap(padded, i, j, dy.shape, g), [-1, cin]));
        taps.push(tf.matMul(xt, dy2));
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
        taps.push(tf.sum(tf.mul(tf.reshape(tap(padded, i, j, dy.shape, g), [-1, c, 1]), dy5), 0));
      }
    }
    return tf.reshape(tf.stack(taps), [kh, kw, c, m]) as tf.Tensor4D;
  });
}

/**
 * dL/dx of a depthwise conv: every tap sends dy·w back to the input positions it read. Stride
 * gaps are made by interleaving zeros (reshape of a padded stack), then each tap is placed by padding.
 */
export function depthwiseInputGradient(xShape: [number, number, number, number], dy: tf.Tensor4D, filter: tf.Tensor4D, strides: number | [number, number], pad: Padding): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, c] = xShape;
    const [kh, kw, , m] = filter.shape;
    const [, oh, ow] = dy.shape;
    const g = geometry(xShape, [kh, kw], dy.shape, pair(strides), pad);
    const [sh, sw] = g.strides;
    const dy5 = tf.reshape(dy, [n, oh, ow, c, m]);
    // Rows/columns of the padded input reached by tap 0: 0, s, 2s, … (zeros between).
    const spreadH = (oh - 1) * sh + 1;
    const spreadW = (ow - 1) * sw + 1;
    let total: tf.Tensor4D = tf.zeros([n, g.paddedShape[0], g.paddedShape[1], c]);
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const weights = tf.reshape(tf.slice(filter, [i, j, 0, 0], [1, 1, c, m]), [1, 1, 1, c, m]);
        let contribution = tf.sum(tf.mul(dy5, weights), 4) as tf.Tensor4D;
        if (sh > 1 || sw > 1) {
          const gaps = tf.pad(tf.reshape(contribution, [n, oh, 1, ow, 1, c]), [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
          contribution = tf.slice(tf.reshape(gaps, [n, oh * sh, ow * sw, c]) as tf.Tensor4D, [0, 0, 0, 0], [n, spreadH, spreadW, c]);
        }
        const placed = tf.pad(contribution, [
          [0, 0],
          [i, g.paddedShape[0] - spreadH - i],
          [j, g.paddedShape[1] - spreadW - j],
          [0, 0],
        ]);
        total = tf.add(total, placed) as tf.Tensor4D;
      }
    }
    return tf.slice(total, [0, g.before[0], g.before[1], 0], [n, h, w, c]);
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

function checkSimple(kernel: string, attrs: ConvAttrs): void {
  const simple = (attrs.dataFormat ?? 'NHWC') === 'NHWC' && pair(attrs.dilations ?? 1).every((d) => d === 1) && (typeof attrs.pad === 'string' || typeof attrs.pad === 'number');
  if (!simple) throw new Error(`${kernel} stand-in supports NHWC, no dilation and same/valid/numeric padding`);
}

/**
 * A kernel computed with tfjs ops on the same backend. Inputs are wrapped as tensors (each with a
 * reference of its own); the result's data is handed to the engine the way tfjs' reshape kernels
 * do it: one more reference, then the temporary tensor goes.
 */
function composite(kernelName: string, backendName: string, compute: (inputs: Record<string, tf.Tensor>, attrs: ConvAttrs) => tf.Tensor): void {
  tf.registerKernel({
    kernelName,
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const a = attrs as unknown as ConvAttrs;
      checkSimple(kernelName, a);
      const engine = tf.engine();
      const data = backend as unknown as { incRef(dataId: object): void };
      // Wrapping the inputs takes a reference each, which disposing the wrappers gives back.
      const tensors = Object.fromEntries(
        Object.entries(inputs).map(([name, info]) => {
          data.incRef((info as tf.TensorInfo).dataId);
          return [name, engine.makeTensorFromTensorInfo(info as tf.TensorInfo)];
        }),
      );
      try {
        const result = compute(tensors, a);
        data.incRef(result.dataId);
        result.dispose();
        return { dataId: result.dataId, shape: result.shape, dtype: result.dtype };
      } finally {
        tf.dispose(Object.values(tensors));
      }
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
  if (missing('DepthwiseConv2dNativeBackpropInput')) {
    composite('DepthwiseConv2dNativeBackpropInput', backendName, ({ dy, filter }, a) => depthwiseInputGradient(a.inputShape!, dy as tf.Tensor4D, filter as tf.Tensor4D, a.strides, a.pad));
  }
}
