import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { from, lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { experiment, getGraph } from '../src/graphs/index.js';
import { createModel, disposeClassifier } from '../src/models/index.js';
import { batch } from '../src/operators/batch.js';
import { decode } from '../src/operators/decode.js';
import { train } from '../src/operators/train.js';
import { FIXTURE_ROOT, fixtureImages, temporaryDir } from './helpers.js';

describe('the study graphs run a tiny training on the fixtures', () => {
  it.each([
    ['vgg19', 32],
    ['inceptionresnetv2', 75],
    ['efficientnetb0', 32],
  ])('%s at %s px', async (name, size) => {
    const out = join(await temporaryDir(), name);
    const report = await lastValueFrom(experiment(getGraph(name), { data: FIXTURE_ROOT, limit: 20, epochs: 1, batch: 4, imageSize: size, weights: 'none', out }));
    expect(report.history).toHaveLength(1);
    expect(Number.isFinite(report.history[0]!.loss) && report.history[0]!.loss > 0).toBe(true);
    expect(report.operators['train']!.items).toBe(report.dataset.train);
    expect(report.speed.images).toBe(20);
  });

  it(`VGG-19 from scratch: one step on ${tf.getBackend()} changes its first convolution (gradients reach it)`, async () => {
    const model = await createModel('vgg19', { classes: 3, inputSize: 32 });
    const photos = (await fixtureImages('ketch')).slice(0, 4);
    const [images] = await lastValueFrom(from(photos.map((path, i) => ({ path, label: i % 3 }))).pipe(decode({ size: 32 }), batch(4), toArray()));
    const kernel = () => model.head.getLayer('block1_conv1').getWeights()[0]!.dataSync().slice();
    const before = kernel();
    const optimizer = tf.train.adam(1e-3);
    const [step] = await lastValueFrom(from([images!]).pipe(train(model, optimizer), toArray()));
    expect(Number.isFinite(step!.lossSum)).toBe(true);
    expect(kernel()).not.toEqual(before);
    optimizer.dispose();
    disposeClassifier(model);
  });
});

describe('--fine-tune N', () => {
  it('trains the last N blocks of the backbone with the head and leaves the rest as loaded', async () => {
    const model = await createModel('mobilenetv2', { classes: 3, inputSize: 64, fineTune: 2 });
    const trainable = model.backbone!.layers.filter((l) => l.trainable && l.weights.length > 0).map((l) => l.name);
    expect(trainable).toEqual(['block_16_expand', 'block_16_expand_BN', 'block_16_depthwise', 'block_16_depthwise_BN', 'block_16_project', 'block_16_project_BN', 'Conv_1', 'Conv_1_bn']);
    const photos = (await fixtureImages('watch')).slice(0, 4);
    const [images] = await lastValueFrom(from(photos.map((path, i) => ({ path, label: i % 3 }))).pipe(decode({ size: 64 }), batch(4), toArray()));
    const weights = (layer: string) => model.backbone!.getLayer(layer).getWeights().map((w) => w.dataSync().slice());
    const [tuned, frozen, stats] = [weights('block_16_depthwise'), weights('block_1_project'), weights('Conv_1_bn')];
    const optimizer = tf.train.adam(1e-3);
    await lastValueFrom(from([images!]).pipe(train(model, optimizer), toArray()));
    expect(weights('block_16_depthwise')).not.toEqual(tuned);
    expect(weights('block_1_project')).toEqual(frozen);
    // batch-norm stays in inference mode: gamma/beta learn, the moving statistics do not move
    const after = weights('Conv_1_bn');
    expect(after[2]).toEqual(stats[2]);
    expect(after[3]).toEqual(stats[3]);
    optimizer.dispose();
    disposeClassifier(model);
    await expect(createModel('mobilenetv2', { classes: 3, inputSize: 64, fineTune: 99 })).rejects.toThrow(/--fine-tune takes 1…18 blocks for mobilenetv2, got 99/);
  });

  it('a fine-tuning graph run bypasses the feature cache', async () => {
    const report = await lastValueFrom(experiment(getGraph('mobilenetv2'), { data: FIXTURE_ROOT, limit: 20, epochs: 1, imageSize: 32, fineTune: 1, out: join(await temporaryDir(), 'ft') }));
    expect(report.features).toMatchObject({ cached: false, fineTunedBlocks: 1 });
    expect(report.operators['embed']).toBeUndefined();
  });
});
