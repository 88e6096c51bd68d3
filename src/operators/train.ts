import * as tf from '@tensorflow/tfjs-core';
import { concatMap, type OperatorFunction } from 'rxjs';
import type { Batch, ImageBatch, StepResult } from '../core/types.js';
import type { Classifier } from '../models/classifier.js';
import { yieldToEventLoop } from '../core/schedule.js';
import { backboneFeatures, cutActivations, lossSum } from '../core/forward.js';
import { normalize } from '../core/normalize.js';


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
export interface TrainOptions {
  /** Loss weight of each class (e.g. {@link balancedClassWeights}); all 1 when absent. */
  classWeights?: Float32Array;
  /** L2 penalty on the head's kernels. */
  l2?: number;
  /**
   * Label smoothing ε: the target puts 1 − ε on the true class and spreads ε over all classes
   * (as Keras' `label_smoothing`), so the head stops pushing logits apart once it is right.
   */
  labelSmoothing?: number;
}

/**
 * Weights that make every class count the same in the loss, whatever its size (n / (C · n_c)),
 * which is what Caltech's mean per-class accuracy rewards.
 */
export function balancedClassWeights(labels: ArrayLike<number>, classes: number): Float32Array {
  const counts = new Float32Array(classes);
  for (let i = 0; i < labels.length; i++) counts[labels[i]!]!++;
  return counts.map((n) => (n > 0 ? labels.length / (classes * n) : 0));
}

export function train(classifier: Classifier, optimizer: tf.Optimizer, options: TrainOptions = {}): OperatorFunction<Batch, StepResult> {
  assertTrainable(classifier);
  const smoothing = options.labelSmoothing ?? 0;
  if (!(smoothing >= 0 && smoothing < 1)) throw new Error(`label smoothing must be in [0, 1), got ${options.labelSmoothing}`);
  const { backbone, head } = classifier;
  // A fine-tuned backbone trains too, its batch-norm kept in inference mode (as Keras advises).
  const tuned = backbone !== null && backbone.trainableWeights.length > 0;
  const variables = [...head.trainableWeights, ...(tuned ? backbone.trainableWeights : [])].map((w) => w.read() as tf.Variable);
  const kernels = head.trainableWeights.filter((w) => w.originalName.endsWith('kernel')).map((w) => w.read());
  let step = 0;
  return concatMap(async (batch) => {
    await yieldToEventLoop();
    let probs: tf.Tensor | undefined;
    let loss: tf.Scalar;
    try {
      loss = tf.tidy(() => {
        // a fine-tuned backbone takes images, or (the top of a split one) the activations at its cut
        if (tuned && 'features' in batch && !classifier.cut) throw new Error('a fine-tuned backbone trains on images, not cached features');
        const input = tuned ? ('features' in batch ? cutActivations(classifier, batch) : normalize(batch as ImageBatch, classifier.preprocessing)) : backboneFeatures(classifier, batch);
        const labels = tf.oneHot(tf.tensor1d(batch.y, 'int32'), classifier.classes);
        const weights = options.classWeights ? tf.tensor1d(Float32Array.from(batch.y, (c) => options.classWeights![c]!)) : undefined;
        return optimizer.minimize(
          () => {
            const features = tuned ? (backbone.apply(input, { training: false }) as tf.Tensor) : input;
            const logits = head.apply(features, { training: true }) as tf.Tensor;
            probs = tf.keep(tf.softmax(logits));
            const loss = tf.losses.softmaxCrossEntropy(labels, logits, weights, smoothing) as tf.Scalar;
            return options.l2 ? (tf.add(loss, tf.mul(options.l2, tf.addN(kernels.map((k) => tf.sum(tf.square(k)))))) as tf.Scalar) : loss;
          },
          true,
          variables,
        )!;
      });
    } catch (error) {
      probs?.dispose();
      throw error;
    }
    try {
      const values = (await probs!.data()) as Float32Array;
      step++;
      // The reported loss is plain cross-entropy, whatever weights, smoothing or penalty the objective adds.
      return { step, probs: values, labels: batch.y, paths: batch.paths, classes: classifier.classes, lossSum: lossSum(values, batch.y, classifier.classes) };
    } finally {
      loss.dispose();
      probs?.dispose();
    }
  });
}
