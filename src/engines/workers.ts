import type { LayersModel } from '@tensorflow/tfjs-layers';
import { ParallelModel } from '../backends/parallel.js';
import type { ImageBatch } from '../core/types.js';
import type { Preprocessing } from '../models/preprocessing.js';
import type { EngineOutput, InferenceEngine } from './engine.js';
import { readOut } from './tfjs.js';

/**
 * Inference on a pool of worker threads, each with its own wasm backend and copy of the network,
 * each preprocessing and predicting a slice of every batch ({@link ParallelModel.predictImages}).
 * This thread only decodes, batches and moves bytes, so decoding overlaps the compute.
 */
export class WorkersEngine implements InferenceEngine {
  readonly name = 'tfjs-workers';

  /** An engine over a pool already started (the pool is the engine's from then on). */
  constructor(
    private readonly pool: ParallelModel,
    private readonly preprocessing: Preprocessing,
  ) {}

  static async open(network: LayersModel, preprocessing: Preprocessing, workers: number): Promise<WorkersEngine> {
    return new WorkersEngine(await ParallelModel.create(network, { workers, backend: 'wasm' }), preprocessing);
  }

  get device(): string {
    return this.pool.backend;
  }

  get threads(): number {
    return this.pool.size;
  }

  async run(batch: ImageBatch): Promise<EngineOutput> {
    return readOut(await this.pool.predictImages(batch, this.preprocessing));
  }

  dispose(): Promise<void> {
    return this.pool.dispose();
  }
}
