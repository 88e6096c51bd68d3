import * as tf from '@tensorflow/tfjs-core';
import { map, type OperatorFunction } from 'rxjs';
import type { ImageBatch } from '../core/types.js';
import type { Preprocessing } from '../models/preprocessing.js';
import { normalize } from '../core/normalize.js';

/** A batch as float tensors, preprocessed for a model. The receiver owns (and disposes) `x` and `y`. */
export interface TensorBatch {
  x: tf.Tensor4D;
  y: tf.Tensor1D;
  paths: string[];
}

/** Operator form of {@link normalize}, for custom pipelines that take tensors further themselves. */
export function toTensor(preprocessing: Preprocessing): OperatorFunction<ImageBatch, TensorBatch> {
  return map((batch) => ({
    x: normalize(batch, preprocessing),
    y: tf.tensor1d(batch.y, 'int32'),
    paths: batch.paths,
  }));
}
