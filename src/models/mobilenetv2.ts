import * as tf from '@tensorflow/tfjs-layers';
import type { SymbolicTensor } from '@tensorflow/tfjs-layers';
import { correctPad, makeDivisible } from './keras-util.js';
import { registerModel, type BuildOptions, type ModelDefinition } from './registry.js';
import { globalPool, topActivation } from './top.js';
import { outputChannels } from './load-weights.js';
import type { KnownWeights } from './weights.js';

const bn = (name: string) => tf.layers.batchNormalization({ axis: -1, epsilon: 1e-3, momentum: 0.999, name });
const relu6 = (name: string) => tf.layers.reLU({ maxValue: 6, name });

function invertedResidual(
  input: SymbolicTensor,
  expansion: number,
  stride: number,
  alpha: number,
  filters: number,
  blockId: number,
): SymbolicTensor {
  const inChannels = input.shape[input.shape.length - 1] as number;
  const pointwiseFilters = makeDivisible(Math.trunc(filters * alpha));
  let prefix = `block_${blockId}_`;
  let x = input;
  if (blockId > 0) {
    x = tf.layers
      .conv2d({ filters: expansion * inChannels, kernelSize: 1, padding: 'same', useBias: false, name: `${prefix}expand` })
      .apply(x) as SymbolicTensor;
    x = bn(`${prefix}expand_BN`).apply(x) as SymbolicTensor;
    x = relu6(`${prefix}expand_relu`).apply(x) as SymbolicTensor;
  } else {
    prefix = 'expanded_conv_';
  }
  if (stride === 2) {
    x = tf.layers.zeroPadding2d({ padding: correctPad(x.shape[1] as number), name: `${prefix}pad` }).apply(x) as SymbolicTensor;
  }
  x = tf.layers
    .depthwiseConv2d({
      kernelSize: 3,
      strides: stride,
      useBias: false,
      padding: stride === 1 ? 'same' : 'valid',
      name: `${prefix}depthwise`,
    })
    .apply(x) as SymbolicTensor;
  x = bn(`${prefix}depthwise_BN`).apply(x) as SymbolicTensor;
  x = relu6(`${prefix}depthwise_relu`).apply(x) as SymbolicTensor;
  x = tf.layers
    .conv2d({ filters: pointwiseFilters, kernelSize: 1, padding: 'same', useBias: false, name: `${prefix}project` })
    .apply(x) as SymbolicTensor;
  x = bn(`${prefix}project_BN`).apply(x) as SymbolicTensor;
  if (inChannels === pointwiseFilters && stride === 1) {
    return tf.layers.add({ name: `${prefix}add` }).apply([input, x]) as SymbolicTensor;
  }
  return x;
}

/** [filters, stride, expansion] of blocks 0…16, as in Keras applications. */
const BLOCKS: ReadonlyArray<readonly [number, number, number]> = [
  [16, 1, 1],
  [24, 2, 6], [24, 1, 6],
  [32, 2, 6], [32, 1, 6], [32, 1, 6],
  [64, 2, 6], [64, 1, 6], [64, 1, 6], [64, 1, 6],
  [96, 1, 6], [96, 1, 6], [96, 1, 6],
  [160, 2, 6], [160, 1, 6], [160, 1, 6],
  [320, 1, 6],
];

/**
 * MobileNetV2 (Sandler et al. 2018) as Keras applications builds it, with its layer names, so
 * ImageNet weights load by name.
 */
export function mobileNetV2({ alpha, inputSize, includeTop, classes, pooling, classifierActivation }: BuildOptions): tf.LayersModel {
  const input = tf.input({ shape: [inputSize, inputSize, 3], name: 'input_1' });
  let x = tf.layers.zeroPadding2d({ padding: correctPad(inputSize), name: 'Conv1_pad' }).apply(input) as SymbolicTensor;
  x = tf.layers
    .conv2d({ filters: makeDivisible(32 * alpha), kernelSize: 3, strides: 2, padding: 'valid', useBias: false, name: 'Conv1' })
    .apply(x) as SymbolicTensor;
  x = bn('bn_Conv1').apply(x) as SymbolicTensor;
  x = relu6('Conv1_relu').apply(x) as SymbolicTensor;
  BLOCKS.forEach(([filters, stride, expansion], blockId) => {
    x = invertedResidual(x, expansion, stride, alpha, filters, blockId);
  });
  const lastFilters = alpha > 1 ? makeDivisible(1280 * alpha) : 1280;
  x = tf.layers.conv2d({ filters: lastFilters, kernelSize: 1, useBias: false, name: 'Conv_1' }).apply(x) as SymbolicTensor;
  x = bn('Conv_1_bn').apply(x) as SymbolicTensor;
  x = relu6('out_relu').apply(x) as SymbolicTensor;
  if (includeTop) {
    x = tf.layers.globalAveragePooling2d({ name: 'global_average_pooling2d' }).apply(x) as SymbolicTensor;
    x = tf.layers.dense({ units: classes, activation: topActivation(classifierActivation), name: 'predictions' }).apply(x) as SymbolicTensor;
  } else {
    x = globalPool(x, pooling);
  }
  return tf.model({ inputs: input, outputs: x, name: `mobilenetv2_${alpha}_${inputSize}` });
}

/**
 * Keras 2.1.6 wrote MobileNetV2 weights under older layer names (`mobl1_conv_1_expand`,
 * `bn1_conv_1_bn_expand`, …); map them to today's names.
 */
export function legacyMobileNetV2Name(name: string): string {
  const m = /^(mobl|bn)(\d+)_conv_\d+_(?:bn_)?(expand|depthwise|project)$/.exec(name);
  if (!m) return name;
  const [, kind, id, part] = m;
  const prefix = id === '0' ? 'expanded_conv_' : `block_${id}_`;
  return kind === 'bn' ? `${prefix}${part}_BN` : `${prefix}${part}`;
}

const KERAS_SIZES = [96, 128, 160, 192, 224];
const KERAS = 'https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/';
/** SHA-256 of the files this project has checked. */
const SHA256: Record<string, string> = {
  'mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5': '279052de2cfa801003aa6cc25cc4d007d35dd0b76f06935268c79788b7642d05',
  'mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5': 'df1c3db1d0d9193719c4c70f707c56f7021f999f825bdc57454c275cf6def19f',
};

function kerasWeights(alpha: number, rows: number): KnownWeights {
  const file = `mobilenet_v2_weights_tf_dim_ordering_tf_kernels_${Number.isInteger(alpha) ? alpha.toFixed(1) : alpha}_${rows}_no_top.h5`;
  return { file, url: `${KERAS}${file}`, ...(SHA256[file] ? { sha256: SHA256[file] } : {}) };
}

export const mobileNetV2Definition: ModelDefinition = {
  name: 'mobilenetv2',
  description: 'MobileNetV2 (2018); frozen ImageNet backbone + softmax head as in the study; alpha 0.5 by default (weights embedded)',
  defaultInputSize: 224,
  minInputSize: 32,
  preprocessing: 'symmetric',
  alphas: [0.5, 0.35, 0.75, 1.0, 1.3, 1.4],
  training: { kind: 'transfer', head: {} },
  blockEnds: /^(expanded_conv_project_BN|block_\d+_project_BN|out_relu)$/,
  build: mobileNetV2,
  // Keras publishes weights per input size; convolution weights work at any size, so the 224 file
  // stands in when the exact size is not at hand, as Keras does for other sizes.
  imagenet: ({ alpha, inputSize }) => (KERAS_SIZES.includes(inputSize) && inputSize !== 224 ? [inputSize, 224] : [224]).map((rows) => kerasWeights(alpha, rows)),
  renamer: () => legacyMobileNetV2Name,
  inferAlpha: (stored, rename) => {
    const channels = outputChannels(stored, 'block_16_project', rename);
    return [0.35, 0.5, 0.75, 1.0, 1.3, 1.4].find((alpha) => makeDivisible(320 * alpha) === channels);
  },
};

registerModel(mobileNetV2Definition);
