import * as tf from '@tensorflow/tfjs-layers';
import type { SymbolicTensor } from '@tensorflow/tfjs-layers';
import { registerModel, type BuildOptions, type ModelDefinition } from './registry.js';
import { globalPool, topActivation } from './top.js';

const STAGES: ReadonlyArray<readonly [filters: number, convs: number]> = [
  [64, 2],
  [128, 2],
  [256, 4],
  [512, 4],
  [512, 4],
];

/** VGG-19 (Simonyan & Zisserman 2014) with Keras-applications layer names. */
export function vgg19({ inputSize, includeTop, classes, pooling, classifierActivation }: BuildOptions): tf.LayersModel {
  const input = tf.input({ shape: [inputSize, inputSize, 3], name: 'input_1' });
  let x: SymbolicTensor = input;
  STAGES.forEach(([filters, convs], stage) => {
    for (let i = 1; i <= convs; i++) {
      x = tf.layers.conv2d({ filters, kernelSize: 3, padding: 'same', activation: 'relu', name: `block${stage + 1}_conv${i}` }).apply(x) as SymbolicTensor;
    }
    x = tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `block${stage + 1}_pool` }).apply(x) as SymbolicTensor;
  });
  if (includeTop) {
    x = tf.layers.flatten({ name: 'flatten' }).apply(x) as SymbolicTensor;
    x = tf.layers.dense({ units: 4096, activation: 'relu', name: 'fc1' }).apply(x) as SymbolicTensor;
    x = tf.layers.dense({ units: 4096, activation: 'relu', name: 'fc2' }).apply(x) as SymbolicTensor;
    x = tf.layers.dense({ units: classes, activation: topActivation(classifierActivation), name: 'predictions' }).apply(x) as SymbolicTensor;
  } else {
    x = globalPool(x, pooling);
  }
  return tf.model({ inputs: input, outputs: x, name: 'vgg19' });
}

const KERAS = 'https://storage.googleapis.com/tensorflow/keras-applications/vgg19/';

export const vgg19Definition: ModelDefinition = {
  name: 'vgg19',
  description: 'VGG-19 (2014); the study trained it from scratch: the whole network with a new 4096-4096-N top',
  defaultInputSize: 224,
  minInputSize: 32,
  preprocessing: 'caffe',
  training: { kind: 'scratch', topLayers: ['fc1', 'fc2', 'predictions'] },
  blockEnds: /^block\d_pool$/,
  build: vgg19,
  imagenet: () => [{ file: 'vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5', url: `${KERAS}vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`, md5: '253f8cb515780f3b799900260a226db6' }],
};

registerModel(vgg19Definition);
