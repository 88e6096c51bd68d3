import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { Preprocessing } from '../models/preprocessing.js';
import { exportOnnx, prefixOf } from '../onnx/export.js';
import type { InferenceEngine } from './engine.js';
import { createOnnxEngine, onnxRuntimeUnavailable, type OnnxProviderChoice } from './onnxruntime.js';
import { TfjsEngine } from './tfjs.js';
import { WorkersEngine } from './workers.js';

export type { EngineOutput, InferenceEngine } from './engine.js';
export { TfjsEngine } from './tfjs.js';
export { WorkersEngine } from './workers.js';
export { createOnnxEngine, ONNX_PROVIDER_CHOICES, onnxRuntimeUnavailable, type OnnxProviderChoice } from './onnxruntime.js';

/** Which runtime computes inference; `auto`: ONNX Runtime when it loads here, else tfjs. */
export const ENGINE_CHOICES = ['auto', 'onnxruntime', 'tfjs'] as const;
export type EngineChoice = (typeof ENGINE_CHOICES)[number];

/** A worker count, or `auto`: decided on the machine that runs (a resumed run on another machine decides again). */
export type Workers = number | 'auto';

/** `auto` is the machine's cores, at most 4: each worker holds a copy of the model (VGG-19's is 0.57 GB). */
export function resolveWorkers(workers: Workers): number {
  return workers === 'auto' ? Math.min(availableParallelism(), 4) : workers;
}

export interface EngineOptions {
  /** The network's input preprocessing (its model declares it). */
  preprocessing: Preprocessing;
  /** Worker threads for inference on wasm; 0 computes on this thread. */
  workers: Workers;
  engine?: EngineChoice;
  /** ONNX Runtime's execution provider (`auto`: CUDA → DirectML/CoreML → CPU, the first that loads). */
  provider?: OnnxProviderChoice;
  /** The network already exported to ONNX (a run's `model/model.onnx`): ONNX Runtime runs that file, so what ships is what is measured. */
  onnx?: string;
  /** Only the network up to (and including) this layer: a split backbone's frozen prefix, its activations there out, flattened `[n, h·w·c]` in NHWC order. */
  upTo?: string;
  /** Why `auto` fell back to tfjs (one line). */
  onNotice?: (line: string) => void;
}

/**
 * The one place that decides how inference runs. ONNX Runtime (`auto`, `onnxruntime`) runs the
 * network exported to ONNX on its own thread pool; `auto` falls back to tfjs, saying why, when
 * ONNX Runtime does not load here or the network does not export. On tfjs: with wasm and workers, a
 * worker pool (tfjs' wasm backend cannot use threads in Node, so the pool is how it uses more than
 * one core); on any other backend, or with no workers, this thread (those backends have threads of
 * their own). The network stays the caller's; `dispose` ends what the engine started (workers, sessions).
 */
export async function openEngine(network: LayersModel, options: EngineOptions): Promise<InferenceEngine> {
  const choice = options.engine ?? 'auto';
  if (!(ENGINE_CHOICES as readonly string[]).includes(choice)) throw new Error(`unknown engine '${choice}'; valid: ${ENGINE_CHOICES.join(', ')}`);
  if (choice !== 'tfjs') {
    try {
      const unavailable = await onnxRuntimeUnavailable();
      if (unavailable) throw new Error(unavailable);
      return await createOnnxEngine(options.onnx ?? exportOnnx(network, { preprocessing: options.preprocessing, ...(options.upTo ? { upTo: options.upTo } : {}) }).bytes, { ...(options.provider ? { provider: options.provider } : {}) });
    } catch (error) {
      // an engine or provider asked for by name is refused, not swapped for another
      if (choice === 'onnxruntime' || (options.provider ?? 'auto') !== 'auto') throw error;
      options.onNotice?.(`engine: tfjs (ONNX Runtime not used: ${(error instanceof Error ? error.message : String(error)).split('\n')[0]})`);
    }
  }
  const workers = resolveWorkers(options.workers);
  const computed = options.upTo ? prefixOf(network, options.upTo) : network;
  if (workers > 0 && tf.getBackend() === 'wasm') return WorkersEngine.open(computed, options.preprocessing, workers);
  return new TfjsEngine(computed, options.preprocessing);
}
