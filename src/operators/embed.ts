import * as tf from '@tensorflow/tfjs-core';
import { concatMap, type OperatorFunction } from 'rxjs';
import type { Batch, FeatureBatch, ImageBatch } from '../core/types.js';
import type { ParallelModel } from '../backends/parallel.js';
import type { Classifier } from '../models/classifier.js';
import { normalize } from './to-tensor.js';
import { yieldToEventLoop } from '../core/schedule.js';

/**
 * The head's input for a batch: the frozen backbone's features of its images (inference mode), or
 * the features the batch already carries, or the images themselves for a network without backbone.
 */
export function backboneFeatures(classifier: Classifier, batch: Batch): tf.Tensor {
  if ('features' in batch) return tf.tensor2d(batch.features, batch.shape);
  const x = normalize(batch, classifier.preprocessing);
  return classifier.backbone ? (classifier.backbone.predict(x) as tf.Tensor) : x;
}

/**
 * Frozen-backbone features of every image batch, as plain arrays; tensors disposed before emitting.
 * With a `pool` (a copy of the backbone per worker thread), each batch is split between the workers.
 */
export function embed(classifier: Classifier, pool?: ParallelModel): OperatorFunction<ImageBatch, FeatureBatch> {
  if (!classifier.backbone) throw new Error(`${classifier.name} has no frozen backbone to compute features with`);
  return concatMap(async (batch) => {
    await yieldToEventLoop();
    const features = pool ? await inPool(pool, classifier, batch) : tf.tidy(() => backboneFeatures(classifier, batch));
    try {
      const values = (await features.data()) as Float32Array;
      return { features: values, shape: features.shape as [number, number], y: batch.y, paths: batch.paths };
    } finally {
      features.dispose();
    }
  });
}

/** The pool's model on a batch's images, each worker preprocessing its slice for `classifier`. */
export function inPool(pool: ParallelModel, classifier: Classifier, batch: ImageBatch): Promise<tf.Tensor> {
  return pool.predictImages(batch, classifier.preprocessing);
}
