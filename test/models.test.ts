import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { describeModels, formatModels } from '../src/cli/models.js';
import { getGraph, HEAD_RECIPES, headOnCachedFeatures, listGraphs, recipeOf } from '../src/graphs/index.js';
import { countParams, createModel, disposeClassifier, getModel, getVariant, listModels, listVariants } from '../src/models/index.js';
import { loadKerasH5, readKerasH5 } from '../src/models/keras-h5.js';
import { makeDivisible } from '../src/models/keras-util.js';
import { legacyMobileNetV2Name, mobileNetV2 } from '../src/models/mobilenetv2.js';
import { loadTfjsLayersWeights } from '../src/models/tfjs-layers-format.js';
import { embeddedWeights } from '../src/models/weights.js';
import { writeKerasH5 } from './h5-writer.js';
import { temporaryDir } from './helpers.js';

const EMBEDDED = embeddedWeights('mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5');
const SHARED = join(import.meta.dirname, '../../shared/weights');

const bytes = (t: tf.Tensor) => Buffer.from((t.dataSync() as Float32Array).buffer);
const sameValues = (a: tf.Tensor, b: tf.Tensor) => a.shape.join() === b.shape.join() && bytes(a).equals(bytes(b));

const count = (name: string, inputSize: number, includeTop: boolean, alpha = 1) => {
  const model = getModel(name).build({ inputSize, alpha, includeTop, classes: 1000, pooling: 'avg', weights: 'imagenet' });
  const params = model.countParams();
  model.dispose();
  return params;
};

describe('the model zoo matches Keras applications', () => {
  it.each([
    ['vgg19', 224, 1, 143_667_240],
    ['inceptionresnetv2', 299, 1, 55_873_736],
    ['mobilenetv2', 224, 1, 3_538_984],
    ['efficientnetb0', 224, 1, 5_330_571],
    ['efficientnetb4', 380, 1, 19_466_823],
  ] as const)('%s with its 1000-class top has the Keras parameter count', (name, size, alpha, params) => {
    expect(count(name, size, true, alpha)).toBe(params);
  });

  it.each([
    ['mobilenetv2', 0.5, 706_224],
    ['mobilenetv2', 0.35, 410_208],
    ['mobilenetv1', 0.25, 218_544],
    ['squeezenet', 1, 722_496],
  ] as const)('%s alpha %s without top has the Keras parameter count', (name, alpha, params) => {
    expect(count(name, getModel(name).defaultInputSize, false, alpha)).toBe(params);
  });

  it('registers the zoo and lists it with counts, inputs, preprocessing and weight sources', () => {
    expect(listModels().map((m) => m.name)).toEqual([
      'efficientnetb0', 'efficientnetb1', 'efficientnetb2', 'efficientnetb3', 'efficientnetb4',
      'inceptionresnetv2', 'mobilenetv1', 'mobilenetv2', 'squeezenet', 'vgg19',
    ]);
    const rows = describeModels(['mobilenetv1', 'squeezenet'].map(getVariant));
    expect(rows[0]).toMatchObject({ name: 'mobilenetv1', backboneParams: 218_544, inputSize: 224, alpha: 0.25, preprocessing: 'symmetric' });
    expect(rows[1]).toMatchObject({ name: 'squeezenet', backboneParams: 722_496, inputSize: 227, preprocessing: 'caffe' });
    expect(rows[1]!.weights[0]).toMatch(/^https:\/\/.*squeezenet_weights_tf_dim_ordering_tf_kernels_notop\.h5$/);
    expect(formatModels(rows)).toMatch(/mobilenetv1\s+475,544\s+218,544\s+224\s+0\.25 symmetric/);
  });

  it('names every width with published weights timm-style, the architecture standing for its default', () => {
    const tags = listVariants().map((v) => v.name);
    expect(tags).toEqual(expect.arrayContaining(['mobilenetv2', 'mobilenetv2_035', 'mobilenetv2_050', 'mobilenetv2_100', 'mobilenetv2_140', 'mobilenetv1', 'mobilenetv1_025', 'mobilenetv1_100', 'squeezenet', 'vgg19', 'efficientnetb0']));
    expect(tags).not.toContain('squeezenet_100');
    expect(getVariant('mobilenetv2')).toMatchObject({ alias: true, alpha: 0.5 });
    expect(getVariant('mobilenetv2_035')).toMatchObject({ alias: false, alpha: 0.35, inputSize: 224, preprocessing: 'symmetric' });
    expect(getVariant('mobilenetv2_035').weights[0]).toMatchObject({ file: 'mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5', sha256: expect.stringMatching(/^df1c3db1/) });
    expect(getVariant('mobilenetv1_025').weights[0]!.file).toBe('mobilenet_2_5_224_tf_no_top.h5');
    expect(() => getVariant('mobilenetv2_060')).toThrow(/^unknown model 'mobilenetv2_060'; known models: .*mobilenetv2_050/);
    expect(describeModels([getVariant('mobilenetv2_035')])[0]).toMatchObject({ name: 'mobilenetv2_035', backboneParams: 410_208, alpha: 0.35 });
  });

  it('gives every variant its architecture\'s graph, once', () => {
    const names = listGraphs().map((g) => g.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(expect.arrayContaining(['mobilenetv2', 'mobilenetv2_035', 'mobilenetv2_050', 'mobilenetv1_025', 'squeezenet', 'mobilenetv2-finetune']));
    // a variant the recipe bench searched runs its own recipe; one it could not, its architecture's
    expect(getGraph('mobilenetv2_035')).toMatchObject({ name: 'mobilenetv2_035', model: 'mobilenetv2_035', experiment: headOnCachedFeatures(HEAD_RECIPES.mobilenetv2_035) });
    expect(getGraph('mobilenetv2_100')).toMatchObject({ name: 'mobilenetv2_100', model: 'mobilenetv2_100', experiment: getGraph('mobilenetv2').experiment });
    expect(getGraph('mobilenetv2_100')).not.toHaveProperty('variants');
    expect(recipeOf(getGraph('mobilenetv2'), 0.35)).toBe(getGraph('mobilenetv2_035').experiment);
    expect(recipeOf(getGraph('mobilenetv2'), 1)).toBe(getGraph('mobilenetv2').experiment);
    expect(() => getGraph('squeezenet_100')).toThrow(/^unknown graph 'squeezenet_100'; known graphs: .*mobilenetv2_035/);
  });

  it('builds a variant at its width, names it by its tag, and refuses another --alpha for it', async () => {
    const tagged = await createModel('mobilenetv2_035', { classes: 3, weights: 'none', inputSize: 32 });
    const aliased = await createModel('mobilenetv2', { classes: 3, weights: 'none', inputSize: 32, alpha: 0.35 });
    try {
      expect(tagged.name).toBe('mobilenetv2_035');
      expect(aliased.name).toBe('mobilenetv2_035');
      expect(tagged.backbone!.countParams()).toBe(aliased.backbone!.countParams());
    } finally {
      disposeClassifier(tagged);
      disposeClassifier(aliased);
    }
    await expect(createModel('mobilenetv2_035', { classes: 3, weights: 'none', alpha: 0.5 })).rejects.toThrow(/^mobilenetv2_035 is alpha 0\.35; for alpha 0\.5 use mobilenetv2_050 or mobilenetv2 --alpha 0\.5$/);
  });

  it('rounds channels like Keras and maps Keras 2.1.6 MobileNetV2 names', () => {
    expect([makeDivisible(16), makeDivisible(11.2), makeDivisible(4), makeDivisible(1280 * 1.4)]).toEqual([16, 16, 8, 1792]);
    expect(legacyMobileNetV2Name('mobl0_conv_0_depthwise')).toBe('expanded_conv_depthwise');
    expect(legacyMobileNetV2Name('bn0_conv_0_bn_project')).toBe('expanded_conv_project_BN');
    expect(legacyMobileNetV2Name('mobl16_conv_16_expand')).toBe('block_16_expand');
    expect(legacyMobileNetV2Name('bn3_conv_3_bn_depthwise')).toBe('block_3_depthwise_BN');
    expect(legacyMobileNetV2Name('Conv_1_bn')).toBe('Conv_1_bn');
  });
});

describe('weights', () => {
  const backbone = (alpha: number) => mobileNetV2({ alpha, inputSize: 96, includeTop: false, classes: 0, pooling: 'avg' });

  it('loads the embedded MobileNetV2 file into every weighted layer', async () => {
    const model = backbone(0.5);
    const before = Array.from(model.getLayer('Conv1').getWeights()[0]!.dataSync());
    const loaded = await loadKerasH5(model, EMBEDDED, { rename: legacyMobileNetV2Name });
    expect(loaded.layers).toBe(model.layers.filter((l) => l.weights.length > 0).length);
    expect(loaded.tensors).toBe(model.weights.length);
    expect(Array.from(model.getLayer('Conv1').getWeights()[0]!.dataSync())).not.toEqual(before);
    model.dispose();
  });

  it('refuses a file whose shapes contradict the model, naming the layer and both shapes, and changes nothing', async () => {
    const model = backbone(0.35);
    const before = Array.from(model.getLayer('Conv1').getWeights()[0]!.dataSync());
    await expect(loadKerasH5(model, EMBEDDED, { rename: legacyMobileNetV2Name })).rejects.toThrow(
      /layer 'block_1_project' weight 'kernel' is \[1,1,48,16\] in the file but \[1,1,48,8\] in the model$/,
    );
    expect(Array.from(model.getLayer('Conv1').getWeights()[0]!.dataSync())).toEqual(before);
    model.dispose();
  });

  it('--alpha that contradicts the file is an error that says which alpha the file holds', async () => {
    await expect(createModel('mobilenetv2', { classes: 3, alpha: 0.35, weights: EMBEDDED, inputSize: 96 })).rejects.toThrow(/holds mobilenetv2 alpha 0\.5 weights, not alpha 0\.35; pass --alpha 0\.5$/);
  });

  it('refuses files with unknown layers or missing tensors, missing files and files that are not HDF5', async () => {
    const model = backbone(0.5);
    await expect(loadKerasH5(model, EMBEDDED)).rejects.toThrow(/layer 'mobl0_conv_0_depthwise' is not in model/);
    await expect(loadKerasH5(model, '/nonexistent/w.h5')).rejects.toThrow(/^weights file not found/);
    const text = join(await temporaryDir(), 'w.h5');
    await writeFile(text, '<html>a proxy error page</html>');
    await expect(loadKerasH5(model, text)).rejects.toThrow(`${text}: not an HDF5 file (a Keras .h5 weights file was expected)`);
    model.dispose();
  });

  it.each([
    ['vgg19', 32],
    ['efficientnetb0', 32],
    ['mobilenetv1', 32],
    ['squeezenet', 48],
  ])('%s: a Keras-format file of its layers loads back exactly', async (name, size) => {
    const definition = getModel(name);
    const source = definition.build({ inputSize: size, alpha: definition.alphas?.[0] ?? 1, includeTop: false, classes: 0, pooling: 'avg', weights: 'imagenet' });
    const path = join(await temporaryDir(), `${name}.h5`);
    await writeKerasH5(source, path);
    const model = await createModel(name, { classes: 4, inputSize: size, weights: path });
    const target = model.backbone ?? model.head;
    for (const layer of source.layers.filter((l) => l.weights.length > 0)) {
      const got = target.getLayer(layer.name).getWeights();
      layer.getWeights().forEach((w, i) => expect(sameValues(got[i]!, w), `${layer.name} weight ${i}`).toBe(true));
    }
    expect(model.weights).toBe(path);
    source.dispose();
    disposeClassifier(model);
  });

  it('inceptionresnetv2: a file from TF2-era Keras (unnamed layers conv2d, conv2d_1, …) loads back exactly onto Keras 2 names', async () => {
    const source = getModel('inceptionresnetv2').build({ inputSize: 75, alpha: 1, includeTop: false, classes: 0, pooling: 'avg' });
    const path = join(await temporaryDir(), 'tf2.h5');
    const tf2Name = (name: string) => name.replace(/^(conv2d|batch_normalization|activation)_(\d+)$/, (_, base: string, n: string) => (n === '1' ? base : `${base}_${Number(n) - 1}`));
    await writeKerasH5(source, path, tf2Name);
    expect((await readKerasH5(path)).some((l) => l.layer === 'conv2d')).toBe(true);
    const model = await createModel('inceptionresnetv2', { classes: 2, inputSize: 75, weights: path });
    for (const layer of source.layers.filter((l) => l.weights.length > 0)) {
      const got = model.backbone!.getLayer(layer.name).getWeights();
      layer.getWeights().forEach((w, i) => expect(sameValues(got[i]!, w), `${layer.name} weight ${i}`).toBe(true));
    }
    source.dispose();
    disposeClassifier(model);
  });

  it('createModel builds the study heads and leaks nothing', async () => {
    const before = tf.memory().numTensors;
    const mobilenet = await createModel('mobilenetv2', { classes: 7, inputSize: 96 });
    expect(mobilenet.weights).toMatch(/^imagenet \(mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0\.5_224_no_top\.h5\)$/);
    expect(countParams(mobilenet)).toBe(706_224 + 1280 * 7 + 7);
    expect(mobilenet.backbone!.trainable).toBe(false);
    disposeClassifier(mobilenet);
    const efficient = await createModel('efficientnetb0', { classes: 5, inputSize: 32, weights: 'none' });
    expect(efficient.head.layers.map((l) => l.getClassName())).toEqual(['InputLayer', 'Dense', 'Dropout', 'Dense']);
    expect(countParams(efficient)).toBe(4_049_571 + 1280 * 1000 + 1000 + 1000 * 5 + 5);
    disposeClassifier(efficient);
    const vgg = await createModel('vgg19', { classes: 3, inputSize: 32 });
    expect(vgg.backbone).toBeNull();
    expect(vgg.weights).toBe('none (from scratch)');
    disposeClassifier(vgg);
    expect(tf.memory().numTensors).toBe(before);
    await expect(createModel('resnet9000', { classes: 3 })).rejects.toThrow(/unknown model 'resnet9000'; known models: .*mobilenetv2/);
    await expect(createModel('inceptionresnetv2', { classes: 3, inputSize: 64, weights: 'none' })).rejects.toThrow(/needs an input of at least 75 px, got 64/);
  });
});

describe.runIf(existsSync(SHARED))('the pretrained files in ../shared/weights load', () => {
  it.each([
    ['mobilenetv2', 0.35, 'keras/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5'],
    ['mobilenetv2', 0.5, 'keras/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5'],
    ['mobilenetv1', 0.25, 'keras/mobilenet_2_5_224_tf_no_top.h5'],
    ['squeezenet', 1, 'keras/squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5'],
  ] as const)('%s alpha %s from %s', async (name, alpha, file) => {
    const model = await createModel(name, { classes: 2, alpha, inputSize: 96, weights: join(SHARED, file) });
    // these are the files Keras publishes: their hashes match the registry's, so they count as `imagenet`
    expect(model.weights).toBe(`imagenet (${file.split('/').pop()})`);
    disposeClassifier(model);
  });

  it('the Teachable Machine tfjs model: its base is the Keras MobileNetV2-0.35 file, tensor for tensor', async () => {
    const fromTfjs = mobileNetV2({ alpha: 0.35, inputSize: 96, includeTop: false, classes: 0, pooling: 'avg' });
    const fromKeras = mobileNetV2({ alpha: 0.35, inputSize: 96, includeTop: false, classes: 0, pooling: 'avg' });
    const loaded = await loadTfjsLayersWeights(fromTfjs, join(SHARED, 'tfjs/mobilenet_v2_0.35_224_teachable'), { rename: legacyMobileNetV2Name, allowUnused: true });
    await loadKerasH5(fromKeras, join(SHARED, 'keras/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5'), { rename: legacyMobileNetV2Name });
    expect(loaded.tensors).toBe(260);
    expect(loaded.unused.length).toBeGreaterThan(0);
    fromKeras.weights.forEach((w, i) => expect(sameValues(fromTfjs.weights[i]!.read(), w.read()), w.name).toBe(true));
    fromTfjs.dispose();
    fromKeras.dispose();
  });
});
