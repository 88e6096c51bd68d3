import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../models/classifier.js';
import { normalize } from './normalize.js';
import type { Batch, FeatureBatch } from './types.js';

/**
 * A batch's activations at a split backbone's cut, shaped as its top takes them: engines hand
 * them out flattened (`[n, h·w·c]`, NHWC order), which a reshape undoes without copying.
 */
export function cutActivations(classifier: Classifier, batch: FeatureBatch): tf.Tensor {
  const shape = classifier.backbone!.inputs[0]!.shape.slice(1) as number[];
  const width = shape.reduce((a, b) => a * b, 1);
  if (batch.shape[1] !== width) throw new Error(`${classifier.name}'s top takes activations of shape [${shape.join(', ')}] at '${classifier.cut}' (${width} values), the batch has ${batch.shape[1]} per image`);
  return tf.tensor(batch.features, [batch.shape[0], ...shape]);
}

/**
 * The head's input for a batch: the frozen backbone's features of its images (inference mode), or
 * the features the batch already carries (or, for a split backbone's top, the cut activations put
 * through it), or the images themselves for a network without backbone.
 */
export function backboneFeatures(classifier: Classifier, batch: Batch): tf.Tensor {
  if ('features' in batch) return classifier.cut ? (classifier.backbone!.predict(cutActivations(classifier, batch)) as tf.Tensor) : tf.tensor2d(batch.features, batch.shape);
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
