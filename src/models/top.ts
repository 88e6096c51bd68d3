import * as tf from '@tensorflow/tfjs-layers';
import type { SymbolicTensor } from '@tensorflow/tfjs-layers';

/** Keras' `pooling` argument for networks without their top. */
export type Pooling = 'avg' | 'max' | undefined;

export function globalPool(x: SymbolicTensor, pooling: Pooling): SymbolicTensor {
  if (pooling === 'avg') return tf.layers.globalAveragePooling2d({ name: 'avg_pool' }).apply(x) as SymbolicTensor;
  if (pooling === 'max') return tf.layers.globalMaxPooling2d({ name: 'max_pool' }).apply(x) as SymbolicTensor;
  return x;
}

/** Keras' `classifier_activation`: `softmax` for ImageNet tops, `linear` for logits. */
export type ClassifierActivation = 'softmax' | 'linear';
export const topActivation = (activation: ClassifierActivation | undefined) => activation ?? 'softmax';
