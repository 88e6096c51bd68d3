import * as tf from '@tensorflow/tfjs-core';
import { concatMap, type OperatorFunction } from 'rxjs';
import type { Batch, ImageBatch, StepResult } from '../core/types.js';
import type { Classifier } from '../models/classifier.js';
import { yieldToEventLoop } from '../core/schedule.js';
import { backboneFeatures } from './embed.js';
import { normalize } from './to-tensor.js';


/**
 * Kernels that training a layer class needs beyond inference and that rxcnn cannot stand in for
 * (its own convolution gradients cover Conv2DBackpropFilter and the depthwise ones).
 */
const GRADIENT_KERNELS: Record<string, string[]> = {
  Conv2D: ['Conv2DBackpropInput'],
  SeparableConv2D: ['Conv2DBackpropInput'],
};

/**
 * Training convolutions needs their gradient kernels; the WebAssembly backend as shipped lacks
 * some (tfjs#8474), so say so up front rather than fail on the first step.
 */
export function assertTrainable(classifier: Classifier): void {
  const backend = tf.getBackend();
  const layers = [...classifier.head.layers, ...(classifier.backbone?.layers ?? [])];
  const needed = new Set(layers.filter((l) => l.trainable && l.trainableWeights.length > 0).flatMap((l) => GRADIENT_KERNELS[l.getClassName()] ?? []));
  const missing = [...needed].filter((kernel) => !tf.getKernel(kernel, backend));
  if (missing.length > 0) {
    throw new Error(`training ${classifier.name}'s convolutions needs ${missing.join(', ')}, which the ${backend} backend lacks; use --backend tensorflow (npm install @tensorflow/tfjs-node) or --backend cpu (slow)`);
  }
}

/**
 * One optimisation step of the classifier's head per batch (softmax cross-entropy), the frozen
 * backbone run in inference mode (or, fine-tuned, trained with it). Emits the batch's predictions and loss as they were before the
 * update. Every tensor it makes is disposed before it emits.
 */
export function train(classifier: Classifier, optimizer: tf.Optimizer): OperatorFunction<Batch, StepResult> {
  assertTrainable(classifier);
  const { backbone, head } = classifier;
  // A fine-tuned backbone trains too, its batch-norm kept in inference mode (as Keras advises).
  const tuned = backbone !== null && backbone.trainableWeights.length > 0;
  const variables = [...head.trainableWeights, ...(tuned ? backbone.trainableWeights : [])].map((w) => w.read() as tf.Variable);
  let step = 0;
  return concatMap(async (batch) => {
    await yieldToEventLoop();
    let probs: tf.Tensor | undefined;
    const loss = tf.tidy(() => {
      if (tuned && 'features' in batch) throw new Error('a fine-tuned backbone trains on images, not cached features');
      const input = tuned ? normalize(batch as ImageBatch, classifier.preprocessing) : backboneFeatures(classifier, batch);
      const labels = tf.oneHot(tf.tensor1d(batch.y, 'int32'), classifier.classes);
      return optimizer.minimize(
        () => {
          const features = tuned ? (backbone.apply(input, { training: false }) as tf.Tensor) : input;
          const logits = head.apply(features, { training: true }) as tf.Tensor;
          probs = tf.keep(tf.softmax(logits));
          return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
        },
        true,
        variables,
      )!;
    });
    try {
      const [lossValue, probValues] = await Promise.all([loss.data(), probs!.data()]);
      step++;
      return {
        step,
        probs: probValues as Float32Array,
        labels: batch.y,
        paths: batch.paths,
        classes: classifier.classes,
        lossSum: lossValue[0]! * batch.y.length,
      };
    } finally {
      loss.dispose();
      probs?.dispose();
    }
  });
}
