import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, describe, expect, it } from 'vitest';
import { conv2dFilterGradient, conv2dInputGradient, depthwiseFilterGradient, depthwiseInputGradient } from '../src/backends/gradients.js';
import { maxPoolInputGradient } from '../src/backends/max-pool-gradient.js';
import { relativeDifference } from '../src/core/difference.js';
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

const relativeError = (got: Float32Array, want: Float32Array) => relativeDifference(want, got).relative;

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
      return [...gradients((a, b) => tf.conv2d(a, b, stride, pad), x, f, r), conv2dFilterGradient(x, r, fShape, stride, pad), conv2dInputGradient(xShape, r, f, stride, pad)];
    };
    const [dxCpu, dfCpu] = await on('cpu', run);
    const [dx, df, directF, directX] = await on(active, run);
    expect(relativeError(dx!, dxCpu!)).toBeLessThan(1e-4);
    expect(relativeError(df!, dfCpu!)).toBeLessThan(1e-4);
    expect(relativeError(directF!, dfCpu!)).toBeLessThan(1e-4);
    expect(relativeError(directX!, dxCpu!)).toBeLessThan(1e-4);
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

describe(`fused convolutions on ${active} (the path tf.layers takes) match the cpu backend`, () => {
  // With a gradient tape open tfjs fuses only a linear activation and computes that op's gradient
  // inside the op; with relu it falls back to separate ops. Both paths are checked, with and without bias.
  const fusedCases = (['conv2d', 'depthwise'] as const).flatMap((op) => [true, false].flatMap((bias) => (['linear', 'relu'] as const).map((activation) => ({ op, bias, activation }))));
  it.each(fusedCases)('fused $op, bias $bias, $activation', async ({ op, bias, activation }) => {
    const xShape: Shape4 = [2, 9, 8, 4];
    const fShape: Shape4 = op === 'conv2d' ? [3, 3, 4, 5] : [3, 3, 4, 2];
    const outChannels = op === 'conv2d' ? 5 : 8;
    const rShape: Shape4 = [2, 5, 4, outChannels];
    const [xv, fv, bv, rv] = [values(xShape), values(fShape), values([outChannels]), values(rShape)];
    const run = () => {
      const [x, f, b, r] = [tf.tensor4d(xv, xShape), tf.tensor4d(fv, fShape), tf.tensor1d(bv), tf.tensor4d(rv, rShape)];
      const forward = (a: tf.Tensor, w: tf.Tensor, c?: tf.Tensor) => {
        const args = { x: a as tf.Tensor4D, filter: w as tf.Tensor4D, strides: 2, pad: 'same' as const, activation, ...(c ? { bias: c } : {}) };
        const y = op === 'conv2d' ? tf.fused.conv2d(args) : tf.fused.depthwiseConv2d(args);
        return tf.sum(tf.mul(y, r));
      };
      return tf.grads(forward as (...args: tf.Tensor[]) => tf.Tensor)(bias ? [x, f, b] : [x, f]);
    };
    const want = await on('cpu', run);
    const got = await on(active, run);
    expect(got).toHaveLength(bias ? 3 : 2);
    for (let i = 0; i < got.length; i++) expect(relativeError(got[i]!, want[i]!)).toBeLessThan(1e-4);
  });
});

describe(`max-pool gradient on ${active} matches the cpu backend, also for windows whose values are all <= 0`, () => {
  const inputs = {
    random: (shape: number[]) => values(shape),
    'all negative': (shape: number[]) => values(shape).map((v) => -Math.abs(v) - 0.01),
    // relu before a pool gives windows of zeros: ties go to the first position, as on cpu.
    'zeros and negatives': (shape: number[]) => values(shape).map((v) => (v > 0 ? 0 : v)),
  };
  const poolCases = ([2, 3] as const).flatMap((size) => [1, 2].flatMap((stride) => (['same', 'valid'] as Pad[]).flatMap((pad) => (Object.keys(inputs) as Array<keyof typeof inputs>).map((input) => ({ size, stride, pad, input })))));
  it.each(poolCases)('window $size, stride $stride, $pad, $input', async ({ size, stride, pad, input }) => {
    const xShape: Shape4 = [2, 7, 8, 3];
    const rShape: Shape4 = [2, outSide(7, size, stride, pad), outSide(8, size, stride, pad), 3];
    const [xv, rv] = [inputs[input](xShape), values(rShape)];
    const run = () => {
      const [x, r] = [tf.tensor4d(xv, xShape), tf.tensor4d(rv, rShape)];
      const dx = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, size, stride, pad), r)))(x);
      return [dx, maxPoolInputGradient(r, x, { filterSize: size, strides: stride, pad })];
    };
    const [want] = await on('cpu', run);
    const [dx, direct] = await on(active, run);
    expect(relativeError(dx!, want!)).toBeLessThan(1e-4);
    expect(relativeError(direct!, want!)).toBeLessThan(1e-4);
    // Every window's gradient lands somewhere: the sum is kept.
    expect(dx!.reduce((a, b) => a + b, 0)).toBeCloseTo(rv.reduce((a, b) => a + b, 0), 3);
  });
});

/** A small network with the layer kinds the zoo uses, every initialiser seeded. */
function mixedModel(): tfl.LayersModel {
  let seed = 1;
  const init = () => ({ kernelInitializer: tfl.initializers.glorotUniform({ seed: seed++ }), biasInitializer: tfl.initializers.randomNormal({ stddev: 0.1, seed: seed++ }) });
  const input = tfl.input({ shape: [12, 12, 3] });
  const apply = (layer: tfl.layers.Layer, x: tfl.SymbolicTensor | tfl.SymbolicTensor[]) => layer.apply(x) as tfl.SymbolicTensor;
  let x = apply(tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', useBias: false, ...init() }), input);
  x = apply(tfl.layers.batchNormalization({ gammaInitializer: tfl.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: seed++ }), betaInitializer: tfl.initializers.randomNormal({ stddev: 0.1, seed: seed++ }) }), x);
  x = apply(tfl.layers.reLU({ maxValue: 6 }), x);
  // Squeeze-excite: per-channel gates from the global average.
  let se = apply(tfl.layers.globalAveragePooling2d({}), x);
  se = apply(tfl.layers.reshape({ targetShape: [1, 1, 8] }), se);
  se = apply(tfl.layers.conv2d({ filters: 4, kernelSize: 1, activation: 'swish', ...init() }), se);
  se = apply(tfl.layers.conv2d({ filters: 8, kernelSize: 1, activation: 'sigmoid', ...init() }), se);
  const excited = apply(tfl.layers.multiply(), [x, se]);
  const separable = apply(tfl.layers.separableConv2d({ filters: 8, kernelSize: 3, padding: 'same', depthwiseInitializer: tfl.initializers.glorotUniform({ seed: seed++ }), pointwiseInitializer: tfl.initializers.glorotUniform({ seed: seed++ }), biasInitializer: tfl.initializers.randomNormal({ stddev: 0.1, seed: seed++ }) }), excited);
  const residual = apply(tfl.layers.add(), [x, separable]);
  const depthwise = apply(tfl.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, strides: 2, padding: 'same', activation: 'relu6', depthwiseInitializer: tfl.initializers.glorotUniform({ seed: seed++ }), biasInitializer: tfl.initializers.randomNormal({ stddev: 0.1, seed: seed++ }) }), residual);
  const pooled = apply(tfl.layers.maxPooling2d({ poolSize: 2, strides: 2 }), residual);
  let y = apply(tfl.layers.concatenate(), [depthwise, apply(tfl.layers.conv2d({ filters: 6, kernelSize: 1, activation: 'swish', ...init() }), pooled)]);
  y = apply(tfl.layers.conv2d({ filters: 10, kernelSize: [1, 3], padding: 'same', activation: 'relu', ...init() }), y);
  y = apply(tfl.layers.globalAveragePooling2d({}), y);
  const output = apply(tfl.layers.dense({ units: 5, ...init() }), y);
  return tfl.model({ inputs: input, outputs: output });
}

describe(`a mixed model's weight gradients on ${active} match the cpu backend`, () => {
  it('batch-norm, relu6, swish, squeeze-excite, residual add, separable and depthwise convs, max pool, concat', async () => {
    const model = mixedModel();
    const weights = model.getWeights().map((w) => w.dataSync().slice() as Float32Array);
    const [xv, labels] = [values([4, 12, 12, 3]), Array.from({ length: 4 }, (_, i) => i % 5)];
    const before = tf.memory().numTensors;
    const gradientsOn = (backend: string) =>
      on(backend, () => {
        // Same starting weights on each backend (training mode moves the batch-norm statistics).
        model.setWeights(model.getWeights().map((w, i) => tf.tensor(weights[i]!, w.shape)));
        const x = tf.tensor4d(xv, [4, 12, 12, 3]);
        const y = tf.oneHot(labels, 5);
        const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
        const { grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, variables);
        return variables.map((v) => grads[v.name]!);
      });
    const want = await gradientsOn('cpu');
    const got = await gradientsOn(active);
    expect(got).toHaveLength(model.trainableWeights.length);
    model.trainableWeights.forEach((w, i) => {
      expect(Math.max(...want[i]!.map(Math.abs)), `${w.name} has a gradient`).toBeGreaterThan(0);
      expect(relativeError(got[i]!, want[i]!), w.name).toBeLessThan(1e-4);
    });
    model.dispose();
    expect(tf.memory().numTensors).toBeLessThanOrEqual(before);
  });
});

describe('the stand-in kernels', () => {
  it('leave no tensor behind', () => {
    const x = tf.tensor4d(values([2, 8, 8, 3]), [2, 8, 8, 3]);
    const f = tf.tensor4d(values([3, 3, 3, 2]), [3, 3, 3, 2]);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.add(tf.add(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'), tf.sum(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'valid'))), tf.sum(tf.maxPool(a as tf.Tensor4D, 2, 2, 'same')))),
      )([x, f]);
      tf.dispose(grads);
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, f]);
  });
});

// [a's shape, b's shape] as stored; the product transposes them as each case says
const matMulCases = [
  { a: [33, 70], b: [33, 11], transposeA: true, transposeB: false },
  { a: [70, 33], b: [11, 33], transposeA: false, transposeB: true },
  { a: [33, 70], b: [11, 33], transposeA: true, transposeB: true },
  { a: [70, 33], b: [33, 11], transposeA: false, transposeB: false },
  { a: [3, 33, 7], b: [3, 33, 5], transposeA: true, transposeB: false },
  { a: [3, 7, 33], b: [1, 5, 33], transposeA: false, transposeB: true },
];

describe(`matMul with transposed operands on ${active} (transposed first on wasm) matches the cpu backend`, () => {
  it.each(matMulCases)('$a × $b, transposeA $transposeA, transposeB $transposeB', async ({ a, b, transposeA, transposeB }) => {
    const [av, bv] = [values(a), values(b)];
    const run = () => [tf.matMul(tf.tensor(av, a), tf.tensor(bv, b), transposeA, transposeB)];
    const [want] = await on('cpu', run);
    const before = tf.memory().numTensors;
    const [got] = await on(active, run);
    expect(tf.memory().numTensors).toBe(before);
    expect(got!.length).toBe(want!.length);
    expect(relativeError(got!, want!)).toBeLessThan(1e-5);
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
    expect(relativeError(dx!, dxCpu!)).toBeLessThan(1e-5);
    expect(relativeError(dw!, dwCpu!)).toBeLessThan(1e-5);
  });
});
