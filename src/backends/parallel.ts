import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { ImageBatch } from '../core/types.js';
import type { Preprocessing } from '../models/preprocessing.js';
import { normalize } from '../core/normalize.js';
import { startWorker } from '../core/worker.js';
import { movable, type SliceRequest, type WorkerReply, type WorkerRequest, type WorkerSetup } from './parallel-protocol.js';

export interface ParallelModelOptions {
  /** How many workers (default: the machine's available parallelism). */
  workers?: number;
  /** The tfjs backend each worker computes on (default `wasm`). */
  backend?: 'wasm' | 'cpu';
  /**
   * Also compute one slice of every batch on the calling thread with `model` itself, while the
   * workers compute theirs: one worker fewer to feed and copy to for the same number of cores.
   */
  mainThread?: boolean;
}

interface Pending {
  resolve(reply: { values: Float32Array; shape: number[] }): void;
  reject(error: Error): void;
}

/** Starts a worker running the worker module next to this one (compiled or TypeScript). */
function startParallelWorker(setup: WorkerSetup): Worker {
  return startWorker(new URL(`./parallel-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url), setup);
}

/** Row ranges splitting `rows` into at most `parts` contiguous, nearly equal slices. */
export function splitRows(rows: number, parts: number): Array<[number, number]> {
  const count = Math.max(1, Math.min(parts, rows));
  return Array.from({ length: count }, (_, i) => [Math.floor((i * rows) / count), Math.floor(((i + 1) * rows) / count)] as [number, number]);
}

/**
 * Inference with a Keras-style model on several cores: a pool of worker threads, each with its own
 * tfjs backend and copy of the model (weights sent once), each predicting a contiguous slice of a
 * batch; the slices come back in order as one tensor. tfjs' WebAssembly backend cannot use threads
 * in Node (its pthread workers are loaded from blob: URLs, which Node's Worker refuses), so this is
 * how inference uses more than one core there. Workers do not keep the process alive while idle;
 * `dispose()` ends them.
 */
export class ParallelModel {
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private failure: Error | null = null;

  private constructor(
    private readonly workers: Worker[],
    /** The backend the workers compute on. */
    readonly backend: string,
    /** The model itself, when the calling thread computes a slice too. */
    private readonly local: LayersModel | null = null,
  ) {
    for (const worker of workers) {
      worker.on('message', (reply: WorkerReply) => this.receive(reply));
      worker.on('error', (error) => this.fail(new Error(`parallel model worker failed: ${error.message.split('\n')[0]}`)));
      worker.on('exit', (code) => {
        if (this.workers.length > 0) this.fail(new Error(`parallel model worker exited (code ${code})`));
      });
    }
  }

  /** Starts the workers and hands each a copy of `model`; resolves when all can predict. */
  static async create(model: LayersModel, options: ParallelModelOptions = {}): Promise<ParallelModel> {
    const count = options.workers ?? availableParallelism();
    if (!Number.isInteger(count) || count < 1) throw new Error(`workers must be a positive integer, got ${count}`);
    if (model.outputs.length !== 1) throw new Error(`a parallel model needs one output, ${model.name} has ${model.outputs.length}`);
    let artifacts: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (saved) => {
      artifacts = saved;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    const backend = options.backend ?? 'wasm';
    const workers = Array.from({ length: count }, () => startParallelWorker({ backend, artifacts: artifacts! }));
    try {
      const started = await Promise.all(workers.map((worker) => ready(worker)));
      const pool = new ParallelModel(workers, started[0]!, options.mainThread ? model : null);
      for (const worker of workers) worker.unref();
      return pool;
    } catch (error) {
      await Promise.all(workers.map((worker) => worker.terminate()));
      throw error;
    }
  }

  get size(): number {
    return this.workers.length;
  }

  /** `model.predict(x)` computed by the workers, each on a slice of the batch (first axis). */
  async predict(x: tf.Tensor): Promise<tf.Tensor> {
    if (x.dtype !== 'float32') throw new Error(`predict needs a float32 batch, got ${x.dtype}`);
    const [rows, ...rest] = x.shape;
    return this.scatter(
      rows,
      // Each slice is cut on the backend and read out once: its buffer is then the worker's, moved
      // not copied. Fresh buffers are what costs here (page faults), so the fewer the better.
      async (from, to) => {
        const part = tf.slice(x, from, to - from);
        try {
          return { kind: 'tensor', values: movable((await part.data()) as Float32Array), shape: [to - from, ...rest] };
        } finally {
          part.dispose();
        }
      },
      (from, to) => tf.slice(x, from, to - from),
    );
  }

  /**
   * `model.predict(normalize(images, preprocessing))`, each worker preprocessing its own slice of
   * the 8-bit pixels: the calling thread only cuts and moves bytes, a quarter of what float input
   * would take.
   */
  async predictImages(images: Pick<ImageBatch, 'x' | 'shape'>, preprocessing: Preprocessing): Promise<tf.Tensor> {
    const [rows, height, width, channels] = images.shape;
    const stride = height * width * channels;
    if (images.x.length !== rows * stride) throw new Error(`predictImages: ${images.x.length} bytes do not make a batch of shape [${images.shape.join(', ')}]`);
    const shape = (from: number, to: number): ImageBatch['shape'] => [to - from, height, width, channels];
    return this.scatter(
      rows,
      // a copy with a buffer of its own, to be moved to the worker (a Buffer's slice would be a view)
      async (from, to) => ({ kind: 'pixels', pixels: Uint8Array.prototype.slice.call(images.x, from * stride, to * stride), shape: shape(from, to), preprocessing }),
      (from, to) => normalize({ x: images.x.subarray(from * stride, to * stride), shape: shape(from, to) }, preprocessing),
    );
  }

  /**
   * Splits `rows` among the workers (and the calling thread, when it computes too), sends each its
   * `request`, computes the own slice from `local` meanwhile, and joins the answers in row order.
   */
  private async scatter(rows: number | undefined, request: (from: number, to: number) => Promise<SliceRequest>, local: (from: number, to: number) => tf.Tensor): Promise<tf.Tensor> {
    this.assertUsable();
    if (rows === undefined || rows === 0) throw new Error('predict needs a batch of at least one row');
    const ranges = splitRows(rows, this.workers.length + (this.local ? 1 : 0));
    const own = this.local ? ranges.shift()! : null;
    const slices = await Promise.all(ranges.map(([from, to]) => request(from, to)));
    this.assertUsable(); // disposed or failed while the slices were read out
    const answers = Promise.all(slices.map((slice, i) => this.request(this.workers[i]!, { id: this.nextId++, ...slice })));
    let mine: tf.Tensor | null = null;
    let results: Array<{ values: Float32Array; shape: number[] }>;
    try {
      // the calling thread computes its own slice while the workers compute theirs
      mine = own && this.local ? tf.tidy(() => this.local!.predict(local(own[0], own[1])) as tf.Tensor) : null;
      results = await answers;
    } catch (error) {
      answers.catch(() => {}); // the workers' answers are not awaited any more when the own slice failed
      mine?.dispose();
      throw error;
    }
    // Joined on the backend, whose memory is already in use, rather than in a new JS buffer.
    const parts = [...(mine ? [mine] : []), ...results.map((r) => tf.tensor(r.values, r.shape))];
    try {
      return parts.length === 1 ? parts[0]!.clone() : tf.concat(parts);
    } finally {
      tf.dispose(parts);
    }
  }

  private assertUsable(): void {
    if (this.workers.length === 0) throw new Error('this parallel model has been disposed');
    if (this.failure) throw this.failure;
  }

  /** Ends the workers; pending predictions fail. */
  async dispose(): Promise<void> {
    const workers = this.workers.splice(0);
    this.fail(new Error('this parallel model has been disposed'));
    await Promise.all(workers.map((worker) => worker.terminate()));
  }

  private request(worker: Worker, request: WorkerRequest): Promise<{ values: Float32Array; shape: number[] }> {
    return new Promise((resolve, reject) => {
      this.pending.set(request.id, { resolve, reject });
      // Busy workers keep the process alive until their answers are in.
      for (const w of this.workers) w.ref();
      worker.postMessage(request, [(request.kind === 'pixels' ? request.pixels : request.values).buffer as ArrayBuffer]);
    });
  }

  private receive(reply: WorkerReply): void {
    if (reply.kind === 'ready') return;
    const pending = this.pending.get(reply.id);
    if (!pending) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) for (const w of this.workers) w.unref();
    if (reply.kind === 'result') pending.resolve(reply);
    else pending.reject(new Error(`parallel predict failed: ${reply.message}`));
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
  }
}

/** Resolves when `worker` has loaded its model; rejects with its one-line reason otherwise. */
function ready(worker: Worker): Promise<string> {
  return new Promise((resolve, reject) => {
    const onMessage = (reply: WorkerReply) => {
      worker.off('error', onError);
      worker.off('exit', onExit);
      worker.off('message', onMessage);
      if (reply.kind === 'ready') resolve(reply.backend);
      else reject(new Error(reply.kind === 'failed' ? reply.message : 'parallel model worker sent an unexpected first message'));
    };
    const onError = (error: Error) => reject(new Error(`parallel model worker failed to start: ${error.message.split('\n')[0]}`));
    const onExit = (code: number) => reject(new Error(`parallel model worker exited while starting (code ${code})`));
    worker.on('message', onMessage);
    worker.once('error', onError);
    worker.once('exit', onExit);
  });
}
