import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { Preprocessing } from '../models/preprocessing.js';
import type { InferenceEngine } from './engine.js';
import { TfjsEngine } from './tfjs.js';
import { WorkersEngine } from './workers.js';

export type { EngineOutput, InferenceEngine } from './engine.js';
export { TfjsEngine } from './tfjs.js';
export { WorkersEngine } from './workers.js';

/** Which runtime computes inference; `auto` picks the best one available (today: tfjs). */
export const ENGINE_CHOICES = ['auto', 'tfjs'] as const;
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
}

/**
 * The one place that decides how inference runs. On wasm with workers: a worker pool (tfjs'
 * wasm backend cannot use threads in Node, so the pool is how it uses more than one core); on any
 * other backend, or with no workers: this thread (those backends have threads of their own).
 * The network stays the caller's; `dispose` ends what the engine started (workers, sessions).
 */
export async function openEngine(network: LayersModel, options: EngineOptions): Promise<InferenceEngine> {
  const choice = options.engine ?? 'auto';
  if (!(ENGINE_CHOICES as readonly string[]).includes(choice)) throw new Error(`unknown engine '${choice}'; valid: ${ENGINE_CHOICES.join(', ')}`);
  const workers = resolveWorkers(options.workers);
  if (workers > 0 && tf.getBackend() === 'wasm') return WorkersEngine.open(network, options.preprocessing, workers);
  return new TfjsEngine(network, options.preprocessing);
}
