import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { SymbolicTensor } from '@tensorflow/tfjs-layers';
import onnxProto from 'onnx-proto';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import type { ImageBatch } from '../src/core/types.js';
import { createOnnxEngine, onnxRuntimeUnavailable } from '../src/engines/onnxruntime.js';
import { disposeClassifier, disposeModel } from '../src/models/classifier.js';
import { createModel, getModel } from '../src/models/index.js';
import { asLayersModel } from '../src/models/persistence.js';
import type { Preprocessing } from '../src/models/preprocessing.js';
import { exportOnnx, type OnnxExportOptions } from '../src/onnx/export.js';
import { relativeDifference } from '../src/core/difference.js';
import { normalize } from '../src/core/normalize.js';
import { fixtureImages } from './helpers.js';

const { onnx } = onnxProto;
const TOLERANCE = 1e-4;

/** Seeded uniform numbers (mulberry32), so a failure reproduces. */
function uniform(seed: number): (lo: number, hi: number) => number {
  let a = seed >>> 0;
  return (lo, hi) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return lo + ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * (hi - lo));
  };
}

const batchOf = (x: Uint8Array, n: number, size: number): ImageBatch => ({ x, shape: [n, size, size, 3], y: new Int32Array(n), paths: [] });

function randomPixels(n: number, size: number, seed: number): ImageBatch {
  const next = uniform(seed);
  return batchOf(Uint8Array.from({ length: n * size * size * 3 }, () => Math.floor(next(0, 256))), n, size);
}

/** Real photos from the fixtures (three classes), squashed to `size` as the decode operator does by default. */
async function photos(n: number, size: number): Promise<ImageBatch> {
  const files = (await Promise.all(['accordion', 'Leopards', 'watch'].map(fixtureImages))).flatMap((f) => f.slice(0, Math.ceil(n / 3))).slice(0, n);
  const pixels = await Promise.all(files.map((f) => sharp(f).removeAlpha().resize(size, size, { fit: 'fill' }).raw().toBuffer()));
  return batchOf(new Uint8Array(Buffer.concat(pixels)), n, size);
}

/**
 * Non-trivial statistics for every batch-norm and normalization layer (nested models included): fresh
 * layers have mean 0 and variance 1, which would make folding them a no-op and hide mistakes.
 */
function randomizeStatistics(model: tfl.LayersModel, seed: number): void {
  const next = uniform(seed);
  const visit = (m: tfl.LayersModel) => {
    for (const layer of m.layers) {
      if (layer instanceof tfl.LayersModel) visit(layer);
      else if (['BatchNormalization', 'Normalization'].includes(layer.getClassName())) {
        const values = layer.weights.map((w) => {
          const kind = w.originalName.split('/').pop()!;
          const [lo, hi] = kind === 'gamma' ? [0.5, 1.5] : kind === 'moving_variance' || kind === 'variance' ? [0.5, 2] : kind === 'count' ? [1, 1] : [-0.5, 0.5];
          const shape = w.shape as number[];
          return tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => next(lo, hi)), shape);
        });
        layer.setWeights(values);
        tf.dispose(values);
      }
    }
  };
  visit(model);
}

/**
 * Exports `model` once and runs each batch through ONNX Runtime and tfjs (`reference`, when the
 * tfjs side is another model): the largest max |onnx − tfjs| / max |tfjs| over the batches, and the
 * first batch's output shape.
 */
async function relativeError(model: tfl.LayersModel, preprocessing: Preprocessing, batches: ImageBatch | ImageBatch[], options: Partial<OnnxExportOptions> = {}, reference?: tfl.LayersModel): Promise<{ error: number; shape: [number, number] }> {
  const exported = exportOnnx(model, { preprocessing, ...options });
  const engine = await createOnnxEngine(exported.bytes, { provider: 'cpu' });
  try {
    let error = 0;
    const shapes: Array<[number, number]> = [];
    for (const batch of Array.isArray(batches) ? batches : [batches]) {
      const ours = await engine.run(batch);
      const expected = tf.tidy(() => {
        const y = (reference ?? model).predict(normalize(batch, preprocessing)) as tf.Tensor;
        return tf.reshape(options.softmax ? tf.softmax(y) : y, [batch.shape[0], -1]);
      });
      const values = expected.dataSync();
      expect(ours.shape).toEqual(expected.shape);
      expected.dispose();
      const { relative, scale } = relativeDifference(values, ours.values);
      expect(scale).toBeGreaterThan(0);
      error = Math.max(error, relative);
      shapes.push(ours.shape);
    }
    return { error, shape: shapes[0]! };
  } finally {
    await engine.dispose();
  }
}

const tensorsAtStart = tf.memory().numTensors;
afterAll(() => {
  // every model below is disposed: nothing the export or the engine did may be left
  expect(tf.memory().numTensors).toBe(tensorsAtStart);
});

describe('ONNX export matches tfjs', () => {
  it('MobileNetV2-0.5 with its embedded ImageNet weights: features and classifier probabilities, on photos and random pixels', async () => {
    const classifier = await createModel('mobilenetv2', { classes: 4, inputSize: 96, seed: 1 });
    const wrapper = asLayersModel(classifier);
    try {
      expect(classifier.weights).toMatch(/^imagenet/);
      const batches = [await photos(6, 96), randomPixels(3, 96, 7)];
      const features = await relativeError(classifier.backbone!, 'symmetric', batches);
      expect(features.shape).toEqual([6, 1280]);
      expect(features.error).toBeLessThan(TOLERANCE);
      const probabilities = await relativeError(wrapper, 'symmetric', batches);
      expect(probabilities.shape).toEqual([6, 4]);
      expect(probabilities.error).toBeLessThan(TOLERANCE);
    } finally {
      disposeClassifier(classifier);
    }
  });

  // Every zoo architecture, random weights and random batch-norm statistics, at a small input size.
  const zoo: Array<[string, { alpha?: number; size: number }]> = [
    ['vgg19', { size: 32 }],
    ['inceptionresnetv2', { size: 75 }],
    ['efficientnetb0', { size: 32 }],
    ['efficientnetb1', { size: 32 }],
    ['efficientnetb2', { size: 32 }],
    ['efficientnetb3', { size: 32 }],
    ['efficientnetb4', { size: 32 }],
    ['mobilenetv2', { alpha: 1.0, size: 32 }],
    ['mobilenetv1', { alpha: 0.25, size: 32 }],
    ['squeezenet', { size: 35 }],
  ];
  it.each(zoo)('%s backbone (features), photos and random pixels', async (name, { alpha = 1, size }) => {
    const definition = getModel(name);
    // weights 'imagenet' makes EfficientNet add its ImageNet input rescaling (a ChannelScale layer); nothing is loaded
    const model = definition.build({ inputSize: size, alpha, includeTop: false, classes: 1, pooling: 'avg', weights: 'imagenet' });
    try {
      randomizeStatistics(model, 3);
      const { error } = await relativeError(model, definition.preprocessing, [await photos(3, size), randomPixels(2, size, 11)]);
      expect(error, name).toBeLessThan(TOLERANCE);
    } finally {
      disposeModel(model);
    }
  });

  it.each([
    ['vgg19', 32],
    ['mobilenetv1', 32],
    ['squeezenet', 35],
  ] as const)('%s with its ImageNet top (Flatten/Dense, Reshape/1×1 conv, conv/GAP/softmax)', async (name, size) => {
    const definition = getModel(name);
    const model = definition.build({ inputSize: size, alpha: 0.25, includeTop: true, classes: 7, classifierActivation: 'softmax' });
    try {
      randomizeStatistics(model, 5);
      const { error, shape } = await relativeError(model, definition.preprocessing, randomPixels(2, size, 13));
      expect(shape).toEqual([2, 7]);
      expect(error).toBeLessThan(TOLERANCE);
    } finally {
      disposeModel(model);
    }
  });

  it('classifiers as the study trains them: hidden dense + dropout head, L2-normalised features, BGR caffe input', async () => {
    const cases = [
      { name: 'efficientnetb0', inputSize: 32 },
      { name: 'squeezenet', inputSize: 40, featureNorm: 3 },
    ];
    for (const { name, ...options } of cases) {
      const classifier = await createModel(name, { classes: 5, weights: 'none', seed: 2, ...options });
      const wrapper = asLayersModel(classifier);
      try {
        randomizeStatistics(wrapper, 9);
        const { error, shape } = await relativeError(wrapper, classifier.preprocessing, await photos(4, options.inputSize));
        expect(shape).toEqual([4, 5]);
        expect(error, name).toBeLessThan(TOLERANCE);
      } finally {
        disposeClassifier(classifier);
      }
    }
  });
});

describe('ONNX export details', () => {
  /** A network with every batch-norm situation: after a convolution (folded), depthwise, separable, dense, concat and a shared convolution (not folded). */
  function foldingNetwork(): tfl.LayersModel {
    const input = tfl.input({ shape: [20, 20, 3] });
    const bn = (x: SymbolicTensor) => tfl.layers.batchNormalization({ epsilon: 1e-3 }).apply(x) as SymbolicTensor;
    let x = bn(tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', useBias: true }).apply(input) as SymbolicTensor);
    x = tfl.layers.reLU({ maxValue: 6 }).apply(x) as SymbolicTensor;
    const depthwise = bn(tfl.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', useBias: false }).apply(x) as SymbolicTensor);
    const separable = bn(tfl.layers.separableConv2d({ filters: 6, kernelSize: 3, padding: 'same' }).apply(x) as SymbolicTensor);
    const shared = tfl.layers.conv2d({ filters: 4, kernelSize: 1, useBias: false }).apply(x) as SymbolicTensor;
    const sharedBn = bn(shared);
    // a convolution read through a dropout by a batch-norm and by the concat: not folded either
    const dropped = tfl.layers.dropout({ rate: 0.5 }).apply(tfl.layers.conv2d({ filters: 3, kernelSize: 1 }).apply(x)) as SymbolicTensor;
    const concat = bn(tfl.layers.concatenate().apply([depthwise, separable, sharedBn, shared, bn(dropped), dropped]) as SymbolicTensor);
    const pooled = tfl.layers.globalAveragePooling2d({}).apply(tfl.layers.activation({ activation: 'swish' }).apply(concat)) as SymbolicTensor;
    const dense = bn(tfl.layers.dense({ units: 10 }).apply(pooled) as SymbolicTensor);
    return tfl.model({ inputs: input, outputs: tfl.layers.activation({ activation: 'sigmoid' }).apply(dense) as SymbolicTensor });
  }

  it('folds batch-norm with non-trivial statistics into convolutions, and keeps the ones it cannot fold', async () => {
    const model = foldingNetwork();
    try {
      randomizeStatistics(model, 21);
      const { error } = await relativeError(model, 'imagenet', randomPixels(3, 20, 4));
      expect(error).toBeLessThan(TOLERANCE);
      const graph = onnx.ModelProto.decode(exportOnnx(model, { preprocessing: 'imagenet' }).bytes).graph!;
      const ops = graph.node!.map((n) => n.opType);
      // conv, depthwise, separable (depthwise + pointwise), shared 1×1, the one before the dropout
      expect(ops.filter((op) => op === 'Conv')).toHaveLength(6);
      // three BNs folded; the shared conv's, the dropout's, the concat's and the dense one's run as Mul + Add, and so
      // does the input's preprocessing ('imagenet' means differ per channel and the first convolution pads); swish adds a Mul
      expect(ops.filter((op) => op === 'Add')).toHaveLength(1 + 4);
      expect(ops.filter((op) => op === 'Mul')).toHaveLength(1 + 4 + 1);
      expect(ops).not.toContain('Pad');
    } finally {
      disposeModel(model);
    }
  });

  it("TensorFlow's 'same' padding at stride 2 (more at the end) and a zero padding folded into the next convolution", async () => {
    for (const size of [9, 10]) {
      const input = tfl.input({ shape: [size, size, 3] });
      let x = tfl.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same' }).apply(input) as SymbolicTensor;
      x = tfl.layers.zeroPadding2d({ padding: [[0, 1], [1, 2]] }).apply(x) as SymbolicTensor;
      x = tfl.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'valid' }).apply(x) as SymbolicTensor;
      x = tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, padding: 'same' }).apply(tfl.layers.zeroPadding2d({ padding: 1 }).apply(x)) as SymbolicTensor;
      x = tfl.layers.averagePooling2d({ poolSize: 3, strides: 1, padding: 'same' }).apply(x) as SymbolicTensor;
      const model = tfl.model({ inputs: input, outputs: x });
      try {
        // 'symmetric': negative values, so a zero padding before the max-pool must win some windows
        const { error } = await relativeError(model, 'symmetric', randomPixels(2, size, size));
        expect(error).toBeLessThan(TOLERANCE);
        const ops = onnx.ModelProto.decode(exportOnnx(model, { preprocessing: 'symmetric' }).bytes).graph!.node!.map((n) => n.opType);
        // the pixels padded with 127.5 (the first convolution took the [-1, 1] scaling), and the zeros before the max-pool
        expect(ops.filter((op) => op === 'Pad')).toHaveLength(2);
      } finally {
        disposeModel(model);
      }
    }
  });

  it("folds the input's preprocessing (scale, offset, BGR order) into the first convolution", () => {
    const firstOps = (name: string, alpha = 1) => {
      const model = getModel(name).build({ inputSize: 64, alpha, includeTop: false, classes: 1, pooling: 'avg' });
      try {
        return onnx.ModelProto.decode(exportOnnx(model, { preprocessing: getModel(name).preprocessing }).bytes).graph!.node!.slice(0, 4).map((n) => n.opType);
      } finally {
        disposeModel(model);
      }
    };
    expect(firstOps('mobilenetv2', 0.35)).toEqual(['Transpose', 'Cast', 'Pad', 'Conv']); // zero padding of [-1, 1] input = 127.5 in pixels
    expect(firstOps('squeezenet')).toEqual(['Transpose', 'Cast', 'Conv', 'Relu']); // 'valid': nothing to pad; caffe's BGR order and means go in too
    expect(firstOps('vgg19')).toEqual(['Transpose', 'Cast', 'Gather', 'Add']); // 'same' padding with per-channel means: kept apart
  });

  it('exports a prefix up to a named layer, equal to tfjs’s intermediate output', async () => {
    const model = getModel('mobilenetv2').build({ inputSize: 48, alpha: 0.35, includeTop: false, classes: 1, pooling: 'avg' });
    try {
      randomizeStatistics(model, 8);
      const prefix = tfl.model({ inputs: model.inputs, outputs: model.getLayer('block_5_add').output as SymbolicTensor });
      const { error, shape } = await relativeError(model, 'symmetric', await photos(2, 48), { upTo: 'block_5_add' }, prefix);
      expect(shape).toEqual([2, 6 * 6 * 16]);
      expect(error).toBeLessThan(TOLERANCE);
      expect(() => exportOnnx(model, { preprocessing: 'symmetric', upTo: 'no_such_layer' })).toThrow(/has no layer 'no_such_layer'/);
    } finally {
      disposeModel(model);
    }
  });

  it("exports a prefix of a saved classifier's backbone (a nested model reading the input)", async () => {
    const classifier = await createModel('mobilenetv2', { classes: 3, inputSize: 48, alpha: 0.35, weights: 'none', seed: 1 });
    const wrapper = asLayersModel(classifier);
    try {
      randomizeStatistics(wrapper, 12);
      const backbone = classifier.backbone!;
      const prefix = tfl.model({ inputs: backbone.inputs, outputs: backbone.getLayer('block_2_add').output as SymbolicTensor });
      const { error, shape } = await relativeError(wrapper, 'symmetric', randomPixels(2, 48, 3), { upTo: 'block_2_add' }, prefix);
      expect(shape).toEqual([2, 12 * 12 * 8]);
      expect(error).toBeLessThan(TOLERANCE);
    } finally {
      disposeClassifier(classifier);
    }
  });

  it('appends a softmax to logits', async () => {
    const classifier = await createModel('mobilenetv1', { classes: 3, inputSize: 32, weights: 'none', seed: 4 });
    try {
      const backboneAndHead = tfl.model({ inputs: classifier.backbone!.inputs, outputs: classifier.head.apply(classifier.backbone!.outputs[0]!) as SymbolicTensor });
      const result = await relativeError(backboneAndHead, 'symmetric', randomPixels(2, 32, 6), { softmax: true });
      expect(result.shape).toEqual([2, 3]);
      expect(result.error).toBeLessThan(TOLERANCE);
    } finally {
      disposeClassifier(classifier);
    }
  });

  it('names a layer it cannot map, and its class, in one line', () => {
    const input = tfl.input({ shape: [8, 8, 3] });
    const up = tfl.layers.upSampling2d({ size: [2, 2], name: 'my_upsampling' }).apply(input) as SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: tfl.layers.globalAveragePooling2d({}).apply(up) as SymbolicTensor });
    try {
      expect(() => exportOnnx(model, { preprocessing: 'unit' })).toThrow(/^layer 'my_upsampling' \(UpSampling2D\) is not supported by the ONNX export$/);
    } finally {
      disposeModel(model);
    }
  });
});

describe('ONNX Runtime engine', () => {
  it('releases its session: 200 small batches and repeated sessions keep RSS flat, tensors unchanged', async () => {
    const model = getModel('squeezenet').build({ inputSize: 32, alpha: 1, includeTop: false, classes: 1, pooling: 'avg' });
    const before = tf.memory().numTensors;
    try {
      const { bytes } = exportOnnx(model, { preprocessing: 'caffe' });
      const batch = randomPixels(2, 32, 1);
      const round = async (runs: number) => {
        const engine = await createOnnxEngine(bytes, { provider: 'cpu', threads: 1 });
        expect(engine.name).toBe('onnxruntime');
        expect(engine.device).toBe('cpu');
        for (let i = 0; i < runs; i++) await engine.run(batch);
        await engine.dispose();
        await engine.dispose(); // idempotent
        await expect(engine.run(batch)).rejects.toThrow(/disposed/);
      };
      await round(20); // warm-up: allocator arenas, code pages
      global.gc?.();
      const rss = process.memoryUsage().rss;
      for (let i = 0; i < 10; i++) await round(20);
      await round(200);
      const grown = (process.memoryUsage().rss - rss) / 2 ** 20;
      expect(grown).toBeLessThan(40);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      disposeModel(model);
    }
  });

  it('refuses a provider that is not here in one line saying how to get it', async () => {
    const { bytes } = exportOnnx(tfl.sequential({ layers: [tfl.layers.globalAveragePooling2d({ inputShape: [4, 4, 3] })] }), { preprocessing: 'unit' });
    expect(await onnxRuntimeUnavailable()).toBeNull(); // the bundled CPU runtime loads here
    const unavailable = process.platform === 'darwin' ? 'dml' : 'coreml';
    await expect(createOnnxEngine(bytes, { provider: unavailable })).rejects.toThrow(new RegExp(`^ONNX Runtime provider '${unavailable}' is unavailable \\(.*\\); to get it: [^\\n]+$`));
    const auto = await createOnnxEngine(bytes);
    try {
      // `auto` says why it passed over each faster provider
      const order = ['cuda', 'dml', 'coreml', 'cpu'];
      const faster = order.slice(0, order.indexOf(auto.device));
      expect(auto.skipped.every((s) => faster.includes(s.provider))).toBe(true);
      // providers of other platforms (DirectML, CoreML on Linux) are not options passed over, so not listed
      if (process.platform === 'linux' && process.arch === 'x64') expect(auto.skipped.map((s) => s.provider)).toEqual(auto.device === 'cpu' ? ['cuda'] : []);
      for (const s of auto.skipped) expect(s.reason).not.toContain('\n');
    } finally {
      await auto.dispose();
    }
  });
});
