import * as tf from '@tensorflow/tfjs-core';
import type { ImageBatch } from './types.js';
import { affineOf, type Preprocessing } from '../models/preprocessing.js';

/**
 * The float32 NHWC input a model with `preprocessing` expects, built from an 8-bit batch. In core
 * because operators, engines and pool workers all preprocess the same way.
 */
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
