import * as tf from '@tensorflow/tfjs-layers';
import type { SymbolicTensor } from '@tensorflow/tfjs-layers';
import { registerModel, type BuildOptions, type ModelDefinition } from './registry.js';
import { globalPool, topActivation } from './top.js';

const relu = (name: string) => tf.layers.activation({ activation: 'relu', name });

function fire(input: SymbolicTensor, id: number, squeeze: number, expand: number): SymbolicTensor {
  const p = `fire${id}_`;
  const s = relu(`${p}relu_squeeze1x1`).apply(tf.layers.conv2d({ filters: squeeze, kernelSize: 1, padding: 'valid', name: `${p}squeeze1x1` }).apply(input)) as SymbolicTensor;
  const left = relu(`${p}relu_expand1x1`).apply(tf.layers.conv2d({ filters: expand, kernelSize: 1, padding: 'valid', name: `${p}expand1x1` }).apply(s)) as SymbolicTensor;
  const right = relu(`${p}relu_expand3x3`).apply(tf.layers.conv2d({ filters: expand, kernelSize: 3, padding: 'same', name: `${p}expand3x3` }).apply(s)) as SymbolicTensor;
  return tf.layers.concatenate({ axis: -1, name: `${p}concat` }).apply([left, right]) as SymbolicTensor;
}

const pool = (name: string) => tf.layers.maxPooling2d({ poolSize: 3, strides: 2, name });

/**
 * SqueezeNet 1.1 (Iandola et al. 2016) as the Keras port of the Caffe model builds it; Keras'
 * `fire2/squeeze1x1` names become `fire2_squeeze1x1` (tfjs reserves '/').
 */
export function squeezeNet({ inputSize, includeTop, classes, pooling, classifierActivation }: BuildOptions): tf.LayersModel {
  const input = tf.input({ shape: [inputSize, inputSize, 3], name: 'input_1' });
  let x = tf.layers.conv2d({ filters: 64, kernelSize: 3, strides: 2, padding: 'valid', name: 'conv1' }).apply(input) as SymbolicTensor;
  x = relu('relu_conv1').apply(x) as SymbolicTensor;
  x = pool('pool1').apply(x) as SymbolicTensor;
  x = fire(x, 2, 16, 64);
  x = fire(x, 3, 16, 64);
  x = pool('pool3').apply(x) as SymbolicTensor;
  x = fire(x, 4, 32, 128);
  x = fire(x, 5, 32, 128);
  x = pool('pool5').apply(x) as SymbolicTensor;
  x = fire(x, 6, 48, 192);
  x = fire(x, 7, 48, 192);
  x = fire(x, 8, 64, 256);
  x = fire(x, 9, 64, 256);
  if (includeTop) {
    x = tf.layers.dropout({ rate: 0.5, name: 'drop9' }).apply(x) as SymbolicTensor;
    x = tf.layers.conv2d({ filters: classes, kernelSize: 1, padding: 'valid', name: 'conv10' }).apply(x) as SymbolicTensor;
    x = relu('relu_conv10').apply(x) as SymbolicTensor;
    x = tf.layers.globalAveragePooling2d({ name: 'global_average_pooling2d' }).apply(x) as SymbolicTensor;
    x = tf.layers.activation({ activation: topActivation(classifierActivation), name: 'loss' }).apply(x) as SymbolicTensor;
  } else {
    x = globalPool(x, pooling);
  }
  return tf.model({ inputs: input, outputs: x, name: 'squeezenet' });
}

export const squeezeNetDefinition: ModelDefinition = {
  name: 'squeezenet',
  description: 'SqueezeNet 1.1 (2016, Caffe port; BGR mean-subtracted input); frozen ImageNet backbone + softmax head',
  defaultInputSize: 227,
  minInputSize: 32,
  preprocessing: 'caffe',
  training: { kind: 'transfer', head: {} },
  blockEnds: /^fire\d+_concat$/,
  build: squeezeNet,
  imagenet: () => [
    {
      file: 'squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5',
      url: 'https://github.com/rcmalli/keras-squeezenet/releases/download/v1.0/squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5',
      sha256: '17154246284f555591549ac2c83e127abfbf4307dc4b0060fdaa2931d0fa38da',
    },
  ],
  renamer: () => (name) => name.replace('/', '_'),
};

registerModel(squeezeNetDefinition);
