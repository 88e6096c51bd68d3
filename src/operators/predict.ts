import * as tf from '@tensorflow/tfjs-core';
import { concatMap, type OperatorFunction } from 'rxjs';
import type { Batch, Predictions } from '../core/types.js';
import type { Classifier } from '../models/classifier.js';
import { backboneFeatures } from './embed.js';
import { yieldToEventLoop } from '../core/schedule.js';

/** Cross-entropy of one row of probabilities, clipped as Keras does. */
export function crossEntropy(probs: Float32Array, row: number, classes: number, label: number): number {
  return -Math.log(Math.max(probs[row * classes + label]!, 1e-7));
}

/** Class probabilities for every image of every batch, in inference mode; tensors disposed before emitting. */
export function predict(classifier: Classifier): OperatorFunction<Batch, Predictions> {
  return concatMap(async (batch) => {
    await yieldToEventLoop();
    const probs = tf.tidy(() => {
      const features = backboneFeatures(classifier, batch);
      return tf.softmax(classifier.head.apply(features, { training: false }) as tf.Tensor);
    });
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
