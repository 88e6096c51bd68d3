import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../models/classifier.js';
import { normalize } from './normalize.js';
import type { Batch } from './types.js';

/**
 * The head's input for a batch: the frozen backbone's features of its images (inference mode), or
 * the features the batch already carries, or the images themselves for a network without backbone.
 */
export function backboneFeatures(classifier: Classifier, batch: Batch): tf.Tensor {
  if ('features' in batch) return tf.tensor2d(batch.features, batch.shape);
  const x = normalize(batch, classifier.preprocessing);
  return classifier.backbone ? (classifier.backbone.predict(x) as tf.Tensor) : x;
}

/** Cross-entropy of one row of probabilities, clipped as Keras does. */
export function crossEntropy(probs: Float32Array, row: number, classes: number, label: number): number {
  return -Math.log(Math.max(probs[row * classes + label]!, 1e-7));
}

/** The summed {@link crossEntropy} of a batch's rows. */
export function lossSum(probs: Float32Array, labels: Int32Array, classes: number): number {
  let sum = 0;
  labels.forEach((label, row) => (sum += crossEntropy(probs, row, classes, label)));
  return sum;
}
