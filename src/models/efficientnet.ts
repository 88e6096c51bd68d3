import * as tf from '@tensorflow/tfjs-layers';
import type { SymbolicTensor } from '@tensorflow/tfjs-layers';
import { ChannelScale, Normalization } from './layers.js';
import { correctPad, makeDivisible } from './keras-util.js';
import { registerModel, type BuildOptions, type ModelDefinition } from './registry.js';
import { globalPool, topActivation } from './top.js';

interface BlockArgs {
  kernel: number;
  repeats: number;
  filtersIn: number;
  filtersOut: number;
  expandRatio: number;
  stride: number;
}

const SE_RATIO = 0.25;
const BLOCKS: readonly BlockArgs[] = [
  { kernel: 3, repeats: 1, filtersIn: 32, filtersOut: 16, expandRatio: 1, stride: 1 },
  { kernel: 3, repeats: 2, filtersIn: 16, filtersOut: 24, expandRatio: 6, stride: 2 },
  { kernel: 5, repeats: 2, filtersIn: 24, filtersOut: 40, expandRatio: 6, stride: 2 },
  { kernel: 3, repeats: 3, filtersIn: 40, filtersOut: 80, expandRatio: 6, stride: 2 },
  { kernel: 5, repeats: 3, filtersIn: 80, filtersOut: 112, expandRatio: 6, stride: 1 },
  { kernel: 5, repeats: 4, filtersIn: 112, filtersOut: 192, expandRatio: 6, stride: 2 },
  { kernel: 3, repeats: 1, filtersIn: 192, filtersOut: 320, expandRatio: 6, stride: 1 },
];

/** [width, depth, resolution, dropout] of B0…B7. */
export const EFFICIENTNET_SCALING: ReadonlyArray<readonly [number, number, number, number]> = [
  [1.0, 1.0, 224, 0.2],
  [1.0, 1.1, 240, 0.2],
  [1.1, 1.2, 260, 0.3],
  [1.2, 1.4, 300, 0.3],
  [1.4, 1.8, 380, 0.4],
  [1.6, 2.2, 456, 0.4],
  [1.8, 2.6, 528, 0.5],
  [2.0, 3.1, 600, 0.5],
];

const IMAGENET_STDDEV = [0.229, 0.224, 0.225];

const roundFilters = (filters: number, width: number) => makeDivisible(filters * width);

const bn = (name: string) => tf.layers.batchNormalization({ axis: -1, epsilon: 1e-3, momentum: 0.99, name });
const swish = (name: string) => tf.layers.activation({ activation: 'swish', name });

function block(input: SymbolicTensor, dropRate: number, filtersIn: number, filtersOut: number, kernel: number, stride: number, expandRatio: number, name: string): SymbolicTensor {
  const filters = filtersIn * expandRatio;
  let x = input;
  if (expandRatio !== 1) {
    x = tf.layers.conv2d({ filters, kernelSize: 1, padding: 'same', useBias: false, name: `${name}expand_conv` }).apply(x) as SymbolicTensor;
    x = bn(`${name}expand_bn`).apply(x) as SymbolicTensor;
    x = swish(`${name}expand_activation`).apply(x) as SymbolicTensor;
  }
  if (stride === 2) x = tf.layers.zeroPadding2d({ padding: correctPad(x.shape[1] as number, kernel), name: `${name}dwconv_pad` }).apply(x) as SymbolicTensor;
  x = tf.layers.depthwiseConv2d({ kernelSize: kernel, strides: stride, padding: stride === 2 ? 'valid' : 'same', useBias: false, name: `${name}dwconv` }).apply(x) as SymbolicTensor;
  x = bn(`${name}bn`).apply(x) as SymbolicTensor;
  x = swish(`${name}activation`).apply(x) as SymbolicTensor;

  const filtersSe = Math.max(1, Math.trunc(filtersIn * SE_RATIO));
  let se = tf.layers.globalAveragePooling2d({ name: `${name}se_squeeze` }).apply(x) as SymbolicTensor;
  se = tf.layers.reshape({ targetShape: [1, 1, filters], name: `${name}se_reshape` }).apply(se) as SymbolicTensor;
  se = tf.layers.conv2d({ filters: filtersSe, kernelSize: 1, padding: 'same', activation: 'swish', name: `${name}se_reduce` }).apply(se) as SymbolicTensor;
  se = tf.layers.conv2d({ filters, kernelSize: 1, padding: 'same', activation: 'sigmoid', name: `${name}se_expand` }).apply(se) as SymbolicTensor;
  x = tf.layers.multiply({ name: `${name}se_excite` }).apply([x, se]) as SymbolicTensor;

  x = tf.layers.conv2d({ filters: filtersOut, kernelSize: 1, padding: 'same', useBias: false, name: `${name}project_conv` }).apply(x) as SymbolicTensor;
  x = bn(`${name}project_bn`).apply(x) as SymbolicTensor;
  if (stride === 1 && filtersIn === filtersOut) {
    if (dropRate > 0) x = tf.layers.dropout({ rate: dropRate, noiseShape: [null, 1, 1, 1] as unknown as number[], name: `${name}drop` }).apply(x) as SymbolicTensor;
    x = tf.layers.add({ name: `${name}add` }).apply([x, input]) as SymbolicTensor;
  }
  return x;
}

/** EfficientNet-B`variant` (Tan & Le 2019) with Keras-applications layer names; input 0…255 RGB. */
export function efficientNet(variant: number, { inputSize, includeTop, classes, pooling, classifierActivation, weights }: BuildOptions): tf.LayersModel {
  const [width, depth, , dropout] = EFFICIENTNET_SCALING[variant]!;
  const input = tf.input({ shape: [inputSize, inputSize, 3], name: 'input_1' });
  let x = tf.layers.rescaling({ scale: 1 / 255, name: 'rescaling' }).apply(input) as SymbolicTensor;
  x = new Normalization({ name: 'normalization' }).apply(x) as SymbolicTensor;
  // Keras 3: the weights' variance is the std-dev (tensorflow#49930), so ImageNet inputs need a further 1/sqrt(std).
  if (weights && weights !== 'none') x = new ChannelScale({ scales: IMAGENET_STDDEV.map((s) => 1 / Math.sqrt(s)), name: 'rescaling_1' }).apply(x) as SymbolicTensor;
  x = tf.layers.zeroPadding2d({ padding: correctPad(inputSize, 3), name: 'stem_conv_pad' }).apply(x) as SymbolicTensor;
  x = tf.layers.conv2d({ filters: roundFilters(32, width), kernelSize: 3, strides: 2, padding: 'valid', useBias: false, name: 'stem_conv' }).apply(x) as SymbolicTensor;
  x = bn('stem_bn').apply(x) as SymbolicTensor;
  x = swish('stem_activation').apply(x) as SymbolicTensor;

  const repeats = (n: number) => Math.ceil(depth * n);
  const total = BLOCKS.reduce((sum, b) => sum + repeats(b.repeats), 0);
  let index = 0;
  BLOCKS.forEach((args, i) => {
    const filtersIn = roundFilters(args.filtersIn, width);
    const filtersOut = roundFilters(args.filtersOut, width);
    for (let j = 0; j < repeats(args.repeats); j++) {
      x = block(x, (0.2 * index) / total, j === 0 ? filtersIn : filtersOut, filtersOut, args.kernel, j === 0 ? args.stride : 1, args.expandRatio, `block${i + 1}${String.fromCharCode(97 + j)}_`);
      index++;
    }
  });
  x = tf.layers.conv2d({ filters: roundFilters(1280, width), kernelSize: 1, padding: 'same', useBias: false, name: 'top_conv' }).apply(x) as SymbolicTensor;
  x = bn('top_bn').apply(x) as SymbolicTensor;
  x = swish('top_activation').apply(x) as SymbolicTensor;
  if (includeTop) {
    x = tf.layers.globalAveragePooling2d({ name: 'avg_pool' }).apply(x) as SymbolicTensor;
    x = tf.layers.dropout({ rate: dropout, name: 'top_dropout' }).apply(x) as SymbolicTensor;
    x = tf.layers.dense({ units: classes, activation: topActivation(classifierActivation), name: 'predictions' }).apply(x) as SymbolicTensor;
  } else {
    x = globalPool(x, pooling);
  }
  return tf.model({ inputs: input, outputs: x, name: `efficientnetb${variant}` });
}

const KERAS = 'https://storage.googleapis.com/keras-applications/';
const NOTOP_MD5 = ['50bc09e76180e00e4465e1a485ddc09d', '74c4e6b3e1f6a1eea24c589628592432', '111f8e2ac8aa800a7a99e3239f7bfb39', 'af6d107764bb5b1abb91932881670226', 'ebc24e6d6c33eaebbd558eafbeedf1ba'];

/** Keras 2 and 3 name the one weighted preprocessing layer `normalization` or `normalization_N`. */
const renamer = () => (name: string) => (/^normalization(_\d+)?$/.test(name) ? 'normalization' : name);

/** EfficientNet-B0…B4 definitions: one builder, five registrations. */
export const efficientNetDefinitions: ModelDefinition[] = NOTOP_MD5.map((md5, variant) => ({
  name: `efficientnetb${variant}`,
  description: `EfficientNet-B${variant} (2019); frozen ImageNet backbone + Dense(1000, relu) + Dropout(0.5) + softmax head, as in the study`,
  defaultInputSize: EFFICIENTNET_SCALING[variant]![2],
  minInputSize: 32,
  preprocessing: 'raw',
  training: { kind: 'transfer', head: { hidden: [1000], dropout: 0.5 } },
  blockEnds: /^(stem_activation|block\d+[a-z]_project_bn|top_activation)$/,
  build: (options: BuildOptions) => efficientNet(variant, options),
  imagenet: () => [{ file: `efficientnetb${variant}_notop.h5`, url: `${KERAS}efficientnetb${variant}_notop.h5`, md5 }],
  renamer,
}));

efficientNetDefinitions.forEach(registerModel);
