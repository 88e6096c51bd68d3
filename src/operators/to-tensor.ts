import * as tf from '@tensorflow/tfjs-core';
import { map, type OperatorFunction } from 'rxjs';
import type { ImageBatch } from '../core/types.js';
import { affineOf, type Preprocessing } from '../models/preprocessing.js';

/** A batch as float tensors, preprocessed for a model. The receiver owns (and disposes) `x` and `y`. */
export interface TensorBatch {
  x: tf.Tensor4D;
  y: tf.Tensor1D;
  paths: string[];
}

/** The float32 NHWC input a model with `preprocessing` expects, built from an 8-bit batch. */
export function normalize(batch: Pick<ImageBatch, 'x' | 'shape'>, preprocessing: Preprocessing): tf.Tensor4D {
  const { scale, offset, bgr } = affineOf(preprocessing);
  const source = batch.x;
  const out = new Float32Array(source.length);
  for (let i = 0; i < source.length; i += 3) {
    for (let c = 0; c < 3; c++) {
      out[i + c] = source[i + (bgr ? 2 - c : c)]! * scale[c]! + offset[c]!;
    }
  }
  return tf.tensor4d(out, batch.shape);
}

/** Operator form of {@link normalize}, for custom pipelines that take tensors further themselves. */
export function toTensor(preprocessing: Preprocessing): OperatorFunction<ImageBatch, TensorBatch> {
  return map((batch) => ({
    x: normalize(batch, preprocessing),
    y: tf.tensor1d(batch.y, 'int32'),
    paths: batch.paths,
  }));
}
