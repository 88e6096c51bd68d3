import * as tf from '@tensorflow/tfjs-core';
import { concatMap, type OperatorFunction } from 'rxjs';
import { backboneFeatures, lossSum } from '../core/forward.js';
import { yieldToEventLoop } from '../core/schedule.js';
import type { Batch, Predictions } from '../core/types.js';
import type { InferenceEngine } from '../engines/engine.js';
import type { Classifier } from '../models/classifier.js';

/**
 * Class probabilities for every image of every batch, in inference mode; tensors disposed before
 * emitting. With an `engine` (opened on the whole classifier, image to probabilities:
 * `asLayersModel(classifier)`), image batches are computed there; feature batches always go
 * through the head here. An engine whose output width is not the classifier's classes fails with
 * one line rather than scoring the wrong columns.
 */
export function predict(classifier: Classifier, engine?: InferenceEngine): OperatorFunction<Batch, Predictions> {
  return concatMap(async (batch) => {
    let probs: Float32Array;
    if (engine && !('features' in batch)) {
      const out = await engine.run(batch);
      if (out.shape[1] !== classifier.classes) throw new Error(`predict: the network gives ${out.shape[1]} outputs per image, the classifier has ${classifier.classes} classes`);
      probs = out.values;
    } else {
      await yieldToEventLoop();
      const tensor = tf.tidy(() => tf.softmax(classifier.head.apply(backboneFeatures(classifier, batch), { training: false }) as tf.Tensor));
      try {
        if (tensor.shape[1] !== classifier.classes) throw new Error(`predict: the network gives ${tensor.shape[1]} outputs per image, the classifier has ${classifier.classes} classes`);
        probs = (await tensor.data()) as Float32Array;
      } finally {
        tensor.dispose();
      }
    }
    return { probs, labels: batch.y, paths: batch.paths, classes: classifier.classes, lossSum: lossSum(probs, batch.y, classifier.classes) };
  });
}
