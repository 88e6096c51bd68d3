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

const CLASSES = ['accordion', 'airplanes', 'Faces_easy', 'Leopards', 'watch', 'ketch'];

async function features(model: Classifier, samples: Sample[]): Promise<Float32Array[]> {
  const batches = await lastValueFrom(from(samples).pipe(decode({ size: model.inputSize }), batch(16), embed(model), toArray()));
  return batches.flatMap((b) => Array.from({ length: b.shape[0] }, (_, r) => b.features.slice(r * b.shape[1], (r + 1) * b.shape[1])));
}

/** Leave-one-out nearest-class-mean accuracy (cosine similarity) of feature vectors. */
function nearestClassMean(vectors: Float32Array[], labels: number[]): number {
  const unit = vectors.map((v) => {
    const norm = Math.hypot(...v) || 1;
    return v.map((x) => x / norm);
  });
  const dim = unit[0]!.length;
  const classes = Math.max(...labels) + 1;
  const sums = Array.from({ length: classes }, () => new Float64Array(dim));
  const counts = new Array<number>(classes).fill(0);
  unit.forEach((v, i) => {
    counts[labels[i]!]!++;
    v.forEach((x, d) => (sums[labels[i]!]![d]! += x));
  });
  let correct = 0;
  unit.forEach((v, i) => {
    let best = -1;
    let bestScore = -Infinity;
    for (let c = 0; c < classes; c++) {
      const own = c === labels[i];
      const n = counts[c]! - (own ? 1 : 0);
      let score = 0;
      for (let d = 0; d < dim; d++) score += v[d]! * ((sums[c]![d]! - (own ? v[d]! : 0)) / n);
      if (score > bestScore) [best, bestScore] = [c, score];
    }
    if (best === labels[i]) correct++;
  });
  return correct / vectors.length;
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
