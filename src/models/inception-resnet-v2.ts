import * as tf from '@tensorflow/tfjs-layers';
import type { SymbolicTensor } from '@tensorflow/tfjs-layers';
import { ScaledResidual } from './layers.js';
import { registerModel, type BuildOptions, type ModelDefinition } from './registry.js';
import { globalPool, topActivation } from './top.js';

/**
 * Keras leaves most layers of Inception-ResNet-v2 unnamed, so they are called `conv2d_1`,
 * `batch_normalization_1`, … in creation order; this reproduces that numbering (Keras 2 counts
 * from 1) so weight files load by name.
 */
class Namer {
  private readonly counts = new Map<string, number>();
  next(base: string): string {
    const n = (this.counts.get(base) ?? 0) + 1;
    this.counts.set(base, n);
    return `${base}_${n}`;
  }
}

interface ConvBn {
  filters: number;
  kernel: number | [number, number];
  strides?: number;
  padding?: 'same' | 'valid';
  activation?: 'relu' | null;
  useBias?: boolean;
  name?: string;
}

function conv2dBn(names: Namer, x: SymbolicTensor, { filters, kernel, strides = 1, padding = 'same', activation = 'relu', useBias = false, name }: ConvBn): SymbolicTensor {
  x = tf.layers.conv2d({ filters, kernelSize: kernel, strides, padding, useBias, name: name ?? names.next('conv2d') }).apply(x) as SymbolicTensor;
  if (!useBias) x = tf.layers.batchNormalization({ axis: -1, scale: false, epsilon: 1e-3, name: name ? `${name}_bn` : names.next('batch_normalization') }).apply(x) as SymbolicTensor;
  if (activation) x = tf.layers.activation({ activation, name: name ? `${name}_ac` : names.next('activation') }).apply(x) as SymbolicTensor;
  return x;
}

type BlockType = 'block35' | 'block17' | 'block8';

function inceptionResNetBlock(names: Namer, x: SymbolicTensor, scale: number, type: BlockType, index: number, activation: 'relu' | null = 'relu'): SymbolicTensor {
  const c = (input: SymbolicTensor, filters: number, kernel: number | [number, number]) => conv2dBn(names, input, { filters, kernel });
  let branches: SymbolicTensor[];
  if (type === 'block35') {
    branches = [c(x, 32, 1), c(c(x, 32, 1), 32, 3), c(c(c(x, 32, 1), 48, 3), 64, 3)];
  } else if (type === 'block17') {
    branches = [c(x, 192, 1), c(c(c(x, 128, 1), 160, [1, 7]), 192, [7, 1])];
  } else {
    branches = [c(x, 192, 1), c(c(c(x, 192, 1), 224, [1, 3]), 256, [3, 1])];
  }
  const block = `${type}_${index}`;
  const mixed = tf.layers.concatenate({ axis: -1, name: `${block}_mixed` }).apply(branches) as SymbolicTensor;
  const up = conv2dBn(names, mixed, { filters: x.shape[3] as number, kernel: 1, activation: null, useBias: true, name: `${block}_conv` });
  let out = new ScaledResidual({ scale, name: block }).apply([x, up]) as SymbolicTensor;
  if (activation) out = tf.layers.activation({ activation, name: `${block}_ac` }).apply(out) as SymbolicTensor;
  return out;
}

/** Inception-ResNet-v2 (Szegedy et al. 2016) with Keras-applications layer names. */
export function inceptionResNetV2({ inputSize, includeTop, classes, pooling, classifierActivation }: BuildOptions): tf.LayersModel {
  const names = new Namer();
  const c = (input: SymbolicTensor, filters: number, kernel: number, strides = 1, padding: 'same' | 'valid' = 'same') => conv2dBn(names, input, { filters, kernel, strides, padding });
  const maxPool = (input: SymbolicTensor) => tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'valid', name: names.next('max_pooling2d') }).apply(input) as SymbolicTensor;
  const concat = (name: string, inputs: SymbolicTensor[]) => tf.layers.concatenate({ axis: -1, name }).apply(inputs) as SymbolicTensor;

  const input = tf.input({ shape: [inputSize, inputSize, 3], name: 'input_1' });
  let x = c(input, 32, 3, 2, 'valid');
  x = c(x, 32, 3, 1, 'valid');
  x = c(x, 64, 3);
  x = maxPool(x);
  x = c(x, 80, 1, 1, 'valid');
  x = c(x, 192, 3, 1, 'valid');
  x = maxPool(x);

  const pool5b = tf.layers.averagePooling2d({ poolSize: 3, strides: 1, padding: 'same', name: names.next('average_pooling2d') }).apply(x) as SymbolicTensor;
  x = concat('mixed_5b', [c(x, 96, 1), c(c(x, 48, 1), 64, 5), c(c(c(x, 64, 1), 96, 3), 96, 3), c(pool5b, 64, 1)]);
  for (let i = 1; i <= 10; i++) x = inceptionResNetBlock(names, x, 0.17, 'block35', i);

  x = concat('mixed_6a', [c(x, 384, 3, 2, 'valid'), c(c(c(x, 256, 1), 256, 3), 384, 3, 2, 'valid'), maxPool(x)]);
  for (let i = 1; i <= 20; i++) x = inceptionResNetBlock(names, x, 0.1, 'block17', i);

  x = concat('mixed_7a', [c(c(x, 256, 1), 384, 3, 2, 'valid'), c(c(x, 256, 1), 288, 3, 2, 'valid'), c(c(c(x, 256, 1), 288, 3), 320, 3, 2, 'valid'), maxPool(x)]);
  for (let i = 1; i <= 9; i++) x = inceptionResNetBlock(names, x, 0.2, 'block8', i);
  x = inceptionResNetBlock(names, x, 1, 'block8', 10, null);
  x = conv2dBn(names, x, { filters: 1536, kernel: 1, name: 'conv_7b' });

  if (includeTop) {
    x = tf.layers.globalAveragePooling2d({ name: 'avg_pool' }).apply(x) as SymbolicTensor;
    x = tf.layers.dense({ units: classes, activation: topActivation(classifierActivation), name: 'predictions' }).apply(x) as SymbolicTensor;
  } else {
    x = globalPool(x, pooling);
  }
  return tf.model({ inputs: input, outputs: x, name: 'inception_resnet_v2' });
}

/** TF2-era Keras numbers unnamed layers from 0 (`conv2d`, `conv2d_1`, …); shift those files onto Keras 2's 1-based names. */
function renamer(fileLayers: readonly string[]): (name: string) => string {
  if (!fileLayers.includes('conv2d')) return (name) => name;
  return (name) => {
    const m = /^(conv2d|batch_normalization|activation)(?:_(\d+))?$/.exec(name);
    return m ? `${m[1]}_${(m[2] ? Number(m[2]) : 0) + 1}` : name;
  };
}

const KERAS = 'https://storage.googleapis.com/tensorflow/keras-applications/inception_resnet_v2/';

export const inceptionResNetV2Definition: ModelDefinition = {
  name: 'inceptionresnetv2',
  description: 'Inception-ResNet-v2 (2016); frozen ImageNet backbone + Dense(1000, relu) + softmax head, as in the study',
  defaultInputSize: 299,
  minInputSize: 75,
  preprocessing: 'symmetric',
  training: { kind: 'transfer', head: { hidden: [1000] } },
  blockEnds: /^(mixed_\w+|block(35|17|8)_\d+|conv_7b_ac)$/,
  build: inceptionResNetV2,
  imagenet: () => [
    {
      file: 'inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5',
      url: `${KERAS}inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5`,
      md5: 'd19885ff4a710c122648d3b5c3b684e4',
    },
  ],
  renamer,
};

registerModel(inceptionResNetV2Definition);
