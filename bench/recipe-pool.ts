/**
 * Where the recipe bench's trials run: on this thread, or on a pool of worker threads (each with
 * its own tfjs backend), which share the features through shared memory. A trial depends only on
 * its model, split, settings and epochs, never on the thread that runs it.
 */
import type { Worker } from 'node:worker_threads';
import type { Sample } from '../src/core/types.js';
import { startWorker } from '../src/core/worker.js';
import { ensembleModel, runTrial, singleModel, validationSplits, type FeatureTable, type TrialModel, type ValidationSplit } from './recipe-trial.js';
import type { TrialRunner } from './recipe-search.js';

/** A feature table packed into one (shared) buffer: row i of `values` is the features of `paths[i]`. */
export interface PackedTable {
  paths: string[];
  dim: number;
  values: Float32Array;
}

export function pack(table: FeatureTable): PackedTable {
  const paths = [...table.keys()];
  const dim = table.get(paths[0]!)?.length ?? 0;
  const values = new Float32Array(new SharedArrayBuffer(paths.length * dim * 4));
  paths.forEach((p, i) => values.set(table.get(p)!, i * dim));
  return { paths, dim, values };
}

const unpack = (packed: PackedTable): FeatureTable => new Map(packed.paths.map((p, i) => [p, packed.values.subarray(i * packed.dim, (i + 1) * packed.dim)]));

/** Everything a trial needs: the packed features, which tables each model trains on, the training part and how to split it. */
export interface TrialSetup {
  /** tfjs backend the trials train on. */
  backend: string;
  tables: Record<string, PackedTable>;
  /** A single model trains on one table; the ensemble on its members' tables side by side. */
  models: Array<{ name: string; classes: number; kind: 'single' | 'ensemble'; tables: string[] }>;
  train: Sample[];
  splits: number;
  fraction: number;
}

/** Runs trials on this thread (the backend is the caller's). */
export function localRunner(setup: TrialSetup): TrialRunner {
  const models = new Map<string, TrialModel>();
  const tables = new Map<string, FeatureTable>();
  const table = (key: string) => tables.get(key) ?? tables.set(key, unpack(setup.tables[key]!)).get(key)!;
  const model = (name: string): TrialModel => {
    if (!models.has(name)) {
      const spec = setup.models.find((m) => m.name === name);
      if (!spec) throw new Error(`no features for model '${name}'`);
      models.set(name, spec.kind === 'ensemble' ? ensembleModel(spec.classes, spec.tables.map(table)) : singleModel(name, spec.classes, table(spec.tables[0]!)));
    }
    return models.get(name)!;
  };
  let splits: ValidationSplit[] | null = null;
  return (name, split, settings, epochs) => runTrial(model(name), (splits ??= validationSplits(setup.train, setup.splits, setup.fraction))[split]!, settings, epochs);
}

interface Job {
  id: number;
  model: string;
  split: number;
  settings: Parameters<TrialRunner>[2];
  epochs: number;
}
export type WorkerReply = { id: number; result: Awaited<ReturnType<TrialRunner>> } | { id: number; error: string };

/** Trials spread over worker threads, one trial per worker at a time, in the order they are asked for. */
export class TrialPool {
  private readonly queue: Array<{ job: Job; resolve: (r: Awaited<ReturnType<TrialRunner>>) => void; reject: (e: Error) => void }> = [];
  private readonly busy = new Map<Worker, (typeof this.queue)[number]>();
  private nextId = 0;

  private constructor(private readonly workers: Worker[]) {
    for (const worker of workers) {
      worker.on('message', (reply: WorkerReply) => {
        const task = this.busy.get(worker)!;
        this.busy.delete(worker);
        if ('error' in reply) task.reject(new Error(reply.error));
        else task.resolve(reply.result);
        this.dispatch();
      });
      worker.on('error', (error) => {
        this.busy.get(worker)?.reject(error);
        this.busy.delete(worker);
      });
    }
  }

  static async open(setup: TrialSetup, count: number): Promise<TrialPool> {
    const workers = Array.from({ length: count }, () => startWorker(new URL('./recipe-worker.ts', import.meta.url), setup));
    // a worker says it is ready once its backend is up, so a broken setup fails here, not in the first trial
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            w.once('message', (m: { ready?: true; error?: string }) => (m.ready ? resolve() : reject(new Error(m.error ?? 'worker failed to start'))));
            w.once('error', reject);
          }),
      ),
    ).catch(async (error: unknown) => {
      await Promise.all(workers.map((w) => w.terminate()));
      throw error;
    });
    return new TrialPool(workers);
  }

  readonly run: TrialRunner = (model, split, settings, epochs) =>
    new Promise((resolve, reject) => {
      this.queue.push({ job: { id: this.nextId++, model, split, settings, epochs }, resolve, reject });
      this.dispatch();
    });

  private dispatch(): void {
    for (const worker of this.workers) {
      if (this.busy.has(worker) || this.queue.length === 0) continue;
      const task = this.queue.shift()!;
      this.busy.set(worker, task);
      worker.postMessage(task.job);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
