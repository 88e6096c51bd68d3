import * as tf from '@tensorflow/tfjs-core';
import type { Preprocessing } from '../models/preprocessing.js';

/** What a pool worker starts with. */
export interface WorkerSetup {
  backend: string;
  /** The model as `model.save` hands it over: topology, weight specs and the weights in one buffer. */
  artifacts: tf.io.ModelArtifacts;
}

/**
 * A slice of a batch to predict: the model's float input as it is, or 8-bit NHWC pixels that the
 * worker preprocesses itself (a quarter of the bytes to move, and no float work on the sender).
 */
export type SliceRequest = { shape: number[] } & ({ kind: 'tensor'; values: Float32Array } | { kind: 'pixels'; pixels: Uint8Array; preprocessing: Preprocessing });

export type WorkerRequest = SliceRequest & { id: number };

export type WorkerReply =
  | { kind: 'ready'; backend: string }
  | { kind: 'result'; id: number; values: Float32Array; shape: number[] }
  /** id -1: the worker could not start. */
  | { kind: 'failed'; id: number; message: string };

/**
 * A read-out of a tensor's values that can be moved to another thread: wasm reads out a fresh copy,
 * which can go as it is; other backends (cpu) may hand out their own storage, which must stay.
 */
export function movable(values: Float32Array): Float32Array {
  return tf.getBackend() === 'wasm' ? values : new Float32Array(values);
}
