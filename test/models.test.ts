import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { countParams, createModel, disposeClassifier, listModels } from '../src/models/index.js';
import { loadKerasH5 } from '../src/models/keras-h5.js';
import { legacyMobileNetV2Name, makeDivisible, mobileNetV2Backbone } from '../src/models/mobilenetv2.js';
import { embeddedWeights } from '../src/models/weights.js';

const EMBEDDED = embeddedWeights('mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5');

describe('MobileNetV2', () => {
  it('has the Keras parameter counts without top (alpha 0.5: 706,224; alpha 0.35: 410,208)', () => {
    for (const [alpha, params] of [
      [0.5, 706_224],
      [0.35, 410_208],
    ] as const) {
      const model = mobileNetV2Backbone({ alpha, inputSize: 224 });
      expect(model.countParams()).toBe(params);
      model.dispose();
    }
  });

  it('rounds channels like Keras', () => {
    expect([makeDivisible(16), makeDivisible(11.2), makeDivisible(4), makeDivisible(1280 * 1.4)]).toEqual([16, 16, 8, 1792]);
  });

  it('maps Keras 2.1.6 layer names to today\'s', () => {
    expect(legacyMobileNetV2Name('mobl0_conv_0_depthwise')).toBe('expanded_conv_depthwise');
    expect(legacyMobileNetV2Name('bn0_conv_0_bn_project')).toBe('expanded_conv_project_BN');
    expect(legacyMobileNetV2Name('mobl16_conv_16_expand')).toBe('block_16_expand');
    expect(legacyMobileNetV2Name('bn3_conv_3_bn_depthwise')).toBe('block_3_depthwise_BN');
    expect(legacyMobileNetV2Name('Conv_1_bn')).toBe('Conv_1_bn');
  });

  it('loads the embedded ImageNet file into every weighted layer', async () => {
    const model = mobileNetV2Backbone({ alpha: 0.5, inputSize: 96 });
    const first = model.getLayer('Conv1').getWeights()[0]!;
    const randomKernel = Array.from(first.dataSync());
    const loaded = await loadKerasH5(model, EMBEDDED, { rename: legacyMobileNetV2Name });
    expect(loaded.layers).toBe(model.layers.filter((l) => l.weights.length > 0).length);
    expect(loaded.tensors).toBe(model.weights.length);
    expect(Array.from(model.getLayer('Conv1').getWeights()[0]!.dataSync())).not.toEqual(randomKernel);
    model.dispose();
  });

  it('refuses a file whose shapes contradict the model, naming the layer and both shapes, and leaves weights untouched', async () => {
    const model = mobileNetV2Backbone({ alpha: 0.35, inputSize: 96 });
    const before = Array.from(model.getLayer('Conv1').getWeights()[0]!.dataSync());
    await expect(loadKerasH5(model, EMBEDDED, { rename: legacyMobileNetV2Name })).rejects.toThrow(
      /layer 'block_1_project' weight 'kernel' is \[1,1,48,16\] in the file but \[1,1,48,8\] in the model$/,
    );
    expect(Array.from(model.getLayer('Conv1').getWeights()[0]!.dataSync())).toEqual(before);
    model.dispose();
  });

  it('refuses a file with layers the model lacks, and a missing file', async () => {
    const model = mobileNetV2Backbone({ alpha: 0.5, inputSize: 96 });
    await expect(loadKerasH5(model, EMBEDDED)).rejects.toThrow(/layer 'mobl0_conv_0_depthwise' \(as 'mobl0_conv_0_depthwise'\) is not in model/);
    await expect(loadKerasH5(model, '/nonexistent/w.h5')).rejects.toThrow(/^weights file not found/);
    model.dispose();
  });
});

describe('model registry', () => {
  it('lists mobilenetv2 and creates it with ImageNet weights and a head for the classes', async () => {
    expect(listModels().map((m) => m.name)).toContain('mobilenetv2');
    const before = tf.memory().numTensors;
    const model = await createModel('mobilenetv2', { classes: 7, inputSize: 96 });
    expect(model.weights).toMatch(/^imagenet/);
    expect(model.preprocessing).toBe('symmetric');
    expect(countParams(model)).toBe(706_224 + 1280 * 7 + 7);
    expect(model.backbone!.trainable).toBe(false);
    disposeClassifier(model);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('says where to put weights that are not available offline', async () => {
    await expect(createModel('mobilenetv2', { classes: 3, alpha: 1 })).rejects.toThrow(
      /weights mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1\.0_224_no_top\.h5 are not available offline: download https:\/\/\S+ into \S+ or pass --weights <file>/,
    );
    await expect(createModel('resnet9000', { classes: 3 })).rejects.toThrow(/unknown model 'resnet9000'; known models: .*mobilenetv2/);
  });
});
