import * as tf from '@tensorflow/tfjs-layers';
import type { SymbolicTensor } from '@tensorflow/tfjs-layers';
import { outputChannels } from './load-weights.js';
import { registerModel, type BuildOptions, type ModelDefinition } from './registry.js';
import { globalPool, topActivation } from './top.js';

const bn = (name: string) => tf.layers.batchNormalization({ axis: -1, epsilon: 1e-3, momentum: 0.99, name });
const relu6 = (name: string) => tf.layers.reLU({ maxValue: 6, name });

function depthwiseBlock(input: SymbolicTensor, filters: number, alpha: number, stride: number, id: number): SymbolicTensor {
  let x = input;
  if (stride !== 1) x = tf.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]], name: `conv_pad_${id}` }).apply(x) as SymbolicTensor;
  x = tf.layers
    .depthwiseConv2d({ kernelSize: 3, strides: stride, padding: stride === 1 ? 'same' : 'valid', useBias: false, name: `conv_dw_${id}` })
    .apply(x) as SymbolicTensor;
  x = bn(`conv_dw_${id}_bn`).apply(x) as SymbolicTensor;
  x = relu6(`conv_dw_${id}_relu`).apply(x) as SymbolicTensor;
  x = tf.layers.conv2d({ filters: Math.trunc(filters * alpha), kernelSize: 1, padding: 'same', useBias: false, name: `conv_pw_${id}` }).apply(x) as SymbolicTensor;
  x = bn(`conv_pw_${id}_bn`).apply(x) as SymbolicTensor;
  return relu6(`conv_pw_${id}_relu`).apply(x) as SymbolicTensor;
}

/** [filters, stride] of depthwise blocks 1…13. */
const BLOCKS: ReadonlyArray<readonly [number, number]> = [
  [64, 1], [128, 2], [128, 1], [256, 2], [256, 1], [512, 2],
  [512, 1], [512, 1], [512, 1], [512, 1], [512, 1],
  [1024, 2], [1024, 1],
];

/** MobileNet v1 (Howard et al. 2017) with Keras-applications layer names. */
export function mobileNet({ alpha, inputSize, includeTop, classes, pooling, classifierActivation }: BuildOptions): tf.LayersModel {
  const input = tf.input({ shape: [inputSize, inputSize, 3], name: 'input_1' });
  let x = tf.layers.zeroPadding2d({ padding: [[0, 1], [0, 1]], name: 'conv1_pad' }).apply(input) as SymbolicTensor;
  x = tf.layers.conv2d({ filters: Math.trunc(32 * alpha), kernelSize: 3, strides: 2, padding: 'valid', useBias: false, name: 'conv1' }).apply(x) as SymbolicTensor;
  x = bn('conv1_bn').apply(x) as SymbolicTensor;
  x = relu6('conv1_relu').apply(x) as SymbolicTensor;
  BLOCKS.forEach(([filters, stride], i) => {
    x = depthwiseBlock(x, filters, alpha, stride, i + 1);
  });
  if (includeTop) {
    const channels = x.shape[3] as number;
    x = tf.layers.globalAveragePooling2d({ name: 'global_average_pooling2d' }).apply(x) as SymbolicTensor;
    x = tf.layers.reshape({ targetShape: [1, 1, channels], name: 'reshape_1' }).apply(x) as SymbolicTensor;
    x = tf.layers.dropout({ rate: 1e-3, name: 'dropout' }).apply(x) as SymbolicTensor;
    x = tf.layers.conv2d({ filters: classes, kernelSize: 1, padding: 'same', name: 'conv_preds' }).apply(x) as SymbolicTensor;
    x = tf.layers.reshape({ targetShape: [classes], name: 'reshape_2' }).apply(x) as SymbolicTensor;
    x = tf.layers.activation({ activation: topActivation(classifierActivation), name: 'predictions' }).apply(x) as SymbolicTensor;
  } else {
    x = globalPool(x, pooling);
  }
  return tf.model({ inputs: input, outputs: x, name: `mobilenet_${alpha}_${inputSize}` });
}

const KERAS = 'https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/';
const ALPHA_TEXT: Record<number, string> = { 1: '1_0', 0.75: '7_5', 0.5: '5_0', 0.25: '2_5' };
const SHA256: Record<string, string> = {
  'mobilenet_2_5_224_tf_no_top.h5': 'dbdb03ee2a22fd895301636cd328b234bb3a9952358f436d82f46b81e0d5b0bf',
};

export const mobileNetDefinition: ModelDefinition = {
  name: 'mobilenetv1',
  description: 'MobileNet v1 (2017); frozen ImageNet backbone + softmax head; alpha 0.25…1.0 (default 0.25)',
  defaultInputSize: 224,
  minInputSize: 32,
  preprocessing: 'symmetric',
  alphas: [0.25, 0.5, 0.75, 1.0],
  training: { kind: 'transfer', head: {} },
  blockEnds: /^conv_pw_\d+_relu$/,
  build: mobileNet,
  inferAlpha: (stored, rename) => {
    const channels = outputChannels(stored, 'conv_pw_13', rename);
    return [0.25, 0.5, 0.75, 1.0].find((alpha) => Math.trunc(1024 * alpha) === channels);
  },
  imagenet: ({ alpha, inputSize }) =>
    ([128, 160, 192].includes(inputSize) ? [inputSize, 224] : [224]).map((rows) => {
      const file = `mobilenet_${ALPHA_TEXT[alpha] ?? '2_5'}_${rows}_tf_no_top.h5`;
      return { file, url: `${KERAS}${file}`, ...(SHA256[file] ? { sha256: SHA256[file] } : {}) };
    }),
};

registerModel(mobileNetDefinition);
