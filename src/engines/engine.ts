import type { ImageBatch } from '../core/types.js';

/** What an engine gives back for a batch: row-major float32 `[n, d]` (features or probabilities). */
export interface EngineOutput {
  values: Float32Array;
  shape: [number, number];
}

/**
 * Inference, whatever computes it. An engine holds one network (a frozen backbone, a prefix of one,
 * or a whole classifier) and is fed what every stage produces: a batch of 8-bit NHWC pixels at the
 * network's input size. The network's own preprocessing (cast, scale/mean, channel order) happens
 * inside the engine, so every engine sees the same bytes. Training never goes through an engine.
 */
export interface InferenceEngine {
  /** `tfjs` (this thread, any tfjs backend), `tfjs-workers` (wasm worker pool) or `onnxruntime`. */
  readonly name: string;
  /** Where it computes: a tfjs backend name (`wasm`, `tensorflow`, …) or an ONNX Runtime execution provider (`cpu`, `cuda`, …). */
  readonly device: string;
  /** Threads computing (worker threads, or the runtime's intra-op threads). */
  readonly threads: number;
  run(batch: ImageBatch): Promise<EngineOutput>;
  /** Ends what the engine started (a native session, worker threads); the network it was opened on stays its owner's. Idempotent. */
  dispose(): Promise<void>;
}

/** How a report names the engine that computed a pass. */
export interface EngineUsed {
  name: string;
  device: string;
  threads: number;
  /** Faster devices passed over, and why (ONNX Runtime's providers). */
  skipped?: ReadonlyArray<{ provider: string; reason: string }>;
}

export const engineUsed = (engine: InferenceEngine & { skipped?: EngineUsed['skipped'] }): EngineUsed => {
  const { name, device, threads, skipped } = engine;
  return { name, device, threads, ...(skipped?.length ? { skipped } : {}) };
};

/** `onnxruntime (cpu, 2 threads)`, `tfjs-workers (wasm, 2 threads)`, `tfjs (wasm, 1 thread)`. */
export const describeEngine = ({ name, device, threads }: EngineUsed) => `${name} (${device}, ${threads} thread${threads === 1 ? '' : 's'})`;
