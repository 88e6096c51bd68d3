import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { normalize } from '../core/normalize.js';
import { yieldToEventLoop } from '../core/schedule.js';
import type { ImageBatch } from '../core/types.js';
import type { Preprocessing } from '../models/preprocessing.js';
import type { EngineOutput, InferenceEngine } from './engine.js';

/**
 * The rows of an output as an engine hands them out, `[n, d]`: a 4-D one (a prefix's activations)
 * flattened in NHWC order, as the ONNX export flattens it, so every engine's rows read alike; tensors disposed.
 */
export async function readOut(output: tf.Tensor): Promise<EngineOutput> {
  try {
    if (output.rank !== 2 && output.rank !== 4) throw new Error(`an inference engine needs a network with [n, d] or [n, h, w, c] output, got shape [${output.shape.join(', ')}]`);
    const [n, ...rest] = output.shape;
    return { values: (await output.data()) as Float32Array, shape: [n!, rest.reduce((a, b) => a * b, 1)] };
  } finally {
    output.dispose();
  }
}

/**
 * Inference on this thread with whatever tfjs backend is active: normalize, then `predict`. The
 * network is borrowed: it stays the caller's (a classifier's backbone, or the whole classifier),
 * so `dispose` leaves it alone.
 */
export class TfjsEngine implements InferenceEngine {
  readonly name = 'tfjs';
  readonly threads = 1;
  readonly device = tf.getBackend();

  constructor(
    private readonly network: LayersModel,
    private readonly preprocessing: Preprocessing,
  ) {}

  async run(batch: ImageBatch): Promise<EngineOutput> {
    // decode callbacks and progress get their turn between compute steps
    await yieldToEventLoop();
    return readOut(tf.tidy(() => this.network.predict(normalize(batch, this.preprocessing)) as tf.Tensor));
  }

  async dispose(): Promise<void> {}
}
