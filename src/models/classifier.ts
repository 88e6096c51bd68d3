import * as tf from '@tensorflow/tfjs-layers';
import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';
import { L2Normalization } from './layers.js';
import type { Preprocessing } from './preprocessing.js';

/**
 * A trainable image classifier as two models: a `backbone` that is frozen and always run in
 * inference mode (batch-norm uses its moving statistics), and a `head` that is trained and outputs
 * logits. A model trained from scratch has no backbone. Splitting them means frozen-backbone
 * training never builds a gradient tape through the convolutions.
 */
export interface Classifier {
  readonly name: string;
  readonly inputSize: number;
  readonly preprocessing: Preprocessing;
  readonly classes: number;
  readonly backbone: LayersModel | null;
  readonly head: LayersModel;
  /** Where the backbone's weights came from, for reports. */
  readonly weights: string;
  /** An ensemble's members, whose frozen backbones together feed `head` (see `ensemble.ts`). */
  readonly members?: readonly Classifier[];
  /**
   * Set on the trainable top of a split backbone (`split.ts`): `backbone` begins at this layer's
   * output, and its batches carry the activations there (computed by an engine on the frozen
   * prefix) as features, not pixels.
   */
  readonly cut?: string;
}

/** What runs at inference: the backbone (or an ensemble's member backbones) and the head. */
export function countParams(classifier: Classifier): number {
  return (classifier.backbone?.countParams() ?? 0) + (classifier.members ?? []).reduce((n, m) => n + m.backbone!.countParams(), 0) + classifier.head.countParams();
}

/** Frees the classifier's weights (an ensemble's members' too). */
export function disposeClassifier(classifier: Classifier): void {
  for (const model of [classifier.backbone, classifier.head]) if (model) disposeModel(model);
  classifier.members?.forEach(disposeClassifier);
}

/**
 * Frees every weight of a model. tfjs reference-counts models used as layers of others (a
 * wrapper from `asLayersModel`, nested Sequentials in loaded files) and can leave some of their
 * variables alive after `dispose()`; this releases every reference and then what is still left.
 */
export function disposeModel(model: LayersModel): void {
  const variables = model.weights.flatMap((w) => {
    try {
      return [w.read()];
    } catch {
      return []; // freed already, through another model that shared it
    }
  });
  try {
    while (model.dispose().refCountAfterDispose > 0);
  } catch (error) {
    if (!/is already disposed/.test(String(error))) throw error;
  }
  for (const v of variables) if (!v.isDisposed) v.dispose();
}

export interface HeadOptions {
  /**
   * Scale every feature vector to this Euclidean length before the dense layers. The length sets
   * how confident the softmax can get for a given kernel norm, so (with the L2 penalty) it acts as
   * a temperature; absent, features go in as the backbone emits them.
   */
  featureNorm?: number;
  /** Hidden dense layers before the classifier, as in the study (e.g. Dense(1000, relu)). */
  hidden?: number[];
  dropout?: number;
}

/** Seeds the head's initial weights and dropout masks, so a run is reproducible. */
export interface HeadSeed {
  seed?: number;
}

/** A dense classification head on feature vectors of length `features`, emitting logits. */
export function denseHead(features: number, classes: number, options: HeadOptions & HeadSeed = {}): LayersModel {
  const seed = (i: number) => (options.seed === undefined ? undefined : options.seed * 1000 + i);
  const kernelInitializer = (i: number) => tf.initializers.glorotUniform({ seed: seed(i) });
  const input = tf.input({ shape: [features], name: 'features' });
  let x: SymbolicTensor = input;
  if (options.featureNorm !== undefined) x = new L2Normalization({ scale: options.featureNorm, name: 'head_l2_normalization' }).apply(x) as SymbolicTensor;
  const hidden = options.hidden ?? [];
  hidden.forEach((units, i) => {
    x = tf.layers.dense({ units, activation: 'relu', kernelInitializer: kernelInitializer(i), name: `head_dense_${i + 1}` }).apply(x) as SymbolicTensor;
  });
  if (options.dropout) x = tf.layers.dropout({ rate: options.dropout, seed: seed(100), name: 'head_dropout' }).apply(x) as SymbolicTensor;
  const logits = tf.layers.dense({ units: classes, kernelInitializer: kernelInitializer(hidden.length), name: 'predictions' }).apply(x) as SymbolicTensor;
  return tf.model({ inputs: input, outputs: logits, name: 'head' });
}
