import * as tf from '@tensorflow/tfjs-core';
import { from, lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { createRandom, shuffled } from '../src/core/random.js';
import type { Sample } from '../src/core/types.js';
import { createModel, disposeClassifier, type Classifier } from '../src/models/index.js';
import { batch } from '../src/operators/batch.js';
import { decode } from '../src/operators/decode.js';
import { embed } from '../src/operators/embed.js';
import { fixtureImages } from './helpers.js';
import { nearestClassMean } from './nearest-class-mean.js';

const CLASSES = ['accordion', 'airplanes', 'Faces_easy', 'Leopards', 'watch', 'ketch'];

async function features(model: Classifier, samples: Sample[]): Promise<Float32Array[]> {
  const batches = await lastValueFrom(from(samples).pipe(decode({ size: model.inputSize }), batch(16), embed(model), toArray()));
  return batches.flatMap((b) => Array.from({ length: b.shape[0] }, (_, r) => b.features.slice(r * b.shape[1], (r + 1) * b.shape[1])));
}

describe('ImageNet weights load right', () => {
  it('nearest-class-mean accuracy of backbone features is far above the same backbone with its weights shuffled', async () => {
    const samples = (await Promise.all(CLASSES.map(async (cls, label) => (await fixtureImages(cls)).slice(0, 10).map((path) => ({ path, label }))))).flat();
    const labels = samples.map((s) => s.label);
    const model = await createModel('mobilenetv2', { classes: CLASSES.length, inputSize: 128 });
    const pretrained = nearestClassMean(await features(model, samples), labels);

    const random = createRandom(1);
    for (const w of model.backbone!.weights) {
      const variable = w.read() as tf.Variable;
      const values = shuffled(Array.from(variable.dataSync()), random);
      tf.tidy(() => variable.assign(tf.tensor(values, variable.shape)));
    }
    const scrambled = nearestClassMean(await features(model, samples), labels);
    disposeClassifier(model);

    expect(pretrained).toBeGreaterThan(0.85);
    expect(pretrained - scrambled).toBeGreaterThan(0.3);
  });
});
