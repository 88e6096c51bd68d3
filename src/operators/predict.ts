import * as tf from '@tensorflow/tfjs-core';
import { concatMap, type OperatorFunction } from 'rxjs';
import type { ParallelModel } from '../backends/parallel.js';
import type { Batch, Predictions } from '../core/types.js';
import type { Classifier } from '../models/classifier.js';
import { backboneFeatures, inPool } from './embed.js';
import { yieldToEventLoop } from '../core/schedule.js';

/** Cross-entropy of one row of probabilities, clipped as Keras does. */
export function crossEntropy(probs: Float32Array, row: number, classes: number, label: number): number {
  return -Math.log(Math.max(probs[row * classes + label]!, 1e-7));
}

/**
 * Class probabilities for every image of every batch, in inference mode; tensors disposed before
 * emitting. With a `pool` (worker threads each holding the whole classifier, image to
 * probabilities: `asLayersModel(classifier)`), image batches are computed there, split between
 * the workers, and this thread stays free for the stages before.
 */
export function predict(classifier: Classifier, pool?: ParallelModel): OperatorFunction<Batch, Predictions> {
  return concatMap(async (batch) => {
    await yieldToEventLoop();
    const probs = pool && !('features' in batch) ? await inPool(pool, classifier, batch) : tf.tidy(() => tf.softmax(classifier.head.apply(backboneFeatures(classifier, batch), { training: false }) as tf.Tensor));
    try {
      const values = (await probs.data()) as Float32Array;
      let lossSum = 0;
      batch.y.forEach((label, row) => (lossSum += crossEntropy(values, row, classifier.classes, label)));
      return { probs: values, labels: batch.y, paths: batch.paths, classes: classifier.classes, lossSum };
    } finally {
      probs.dispose();
    }
  });
}
