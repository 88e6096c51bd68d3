import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { ImageBatch } from '../core/types.js';
import { concatFeatures } from '../core/features.js';
import { type EngineOutput, type EngineUsed, type InferenceEngine } from './engine.js';
import { readOut } from './tfjs.js';

/**
 * An ensemble's inference: each member's backbone on its own engine (each does its own
 * preprocessing of the same 8-bit batch), their features side by side as training saw them
 * ({@link concatFeatures}), then the head and softmax on tfjs (a dense layer: not worth an export).
 * Image batches in, probabilities out, like an engine opened on a whole classifier.
 */
export class EnsembleEngine implements InferenceEngine {
  readonly name: string;
  readonly device: string;
  readonly threads: number;
  readonly skipped?: EngineUsed['skipped'];

  constructor(
    private readonly members: readonly InferenceEngine[],
    private readonly head: LayersModel,
    private readonly featureNorm?: number,
  ) {
    const first = members[0]!;
    this.name = `${[...new Set(members.map((m) => m.name))].join(' + ')}: ${members.length} member backbones, then the head on tfjs`;
    this.device = first.device;
    this.threads = first.threads;
    const skipped = members.flatMap((m) => (m as { skipped?: EngineUsed['skipped'] }).skipped ?? []);
    if (skipped.length) this.skipped = skipped.filter((s, i) => skipped.findIndex((t) => t.provider === s.provider) === i);
  }

  async run(batch: ImageBatch): Promise<EngineOutput> {
    const outs: EngineOutput[] = [];
    for (const member of this.members) outs.push(await member.run(batch));
    const n = batch.shape[0];
    const rows = Array.from({ length: n }, (_, r) => concatFeatures(outs.map((o) => o.values.subarray(r * o.shape[1], (r + 1) * o.shape[1])), this.featureNorm));
    const width = rows[0]?.length ?? 0;
    const features = new Float32Array(n * width);
    rows.forEach((row, r) => features.set(row, r * width));
    return readOut(tf.tidy(() => tf.softmax(this.head.predict(tf.tensor2d(features, [n, width])) as tf.Tensor)));
  }

  async dispose(): Promise<void> {
    await Promise.all(this.members.map((m) => m.dispose()));
  }
}
