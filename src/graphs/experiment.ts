import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import pLimit from 'p-limit';
import { readFile, rm } from 'node:fs/promises';
import { concatMap, defaultIfEmpty, defer, finalize, from, fromEvent, last, map, NEVER, Observable, range, reduce, shareReplay, Subscription, switchMap, takeUntil, takeWhile, toArray, type OperatorFunction } from 'rxjs';
import { ParallelModel } from '../backends/parallel.js';
import { FeatureCache } from '../features/cache.js';
import { writeFileAtomic, writeJsonAtomic } from '../core/files.js';
import { randomFor, shuffled } from '../core/random.js';
import type { Batch, FeatureBatch, ImageBatch, Predictions, Sample, Skip, Split } from '../core/types.js';
import { createModel, disposeClassifier, type Classifier } from '../models/index.js';
import { asLayersModel, saveModel } from '../models/persistence.js';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { cacheDir } from '../models/weights.js';
import { augment, mirror } from '../operators/augment.js';
import { batch } from '../operators/batch.js';
import { decode } from '../operators/decode.js';
import { discover } from '../operators/discover.js';
import { embed } from '../operators/embed.js';
import { Meter, measure, measureSource } from '../operators/measure.js';
import { addPredictions, emptyTally, metrics, summarize, type Metrics, type Tally } from '../operators/metrics.js';
import { predict } from '../operators/predict.js';
import { prefetch } from '../operators/prefetch.js';
import { manifestOf, parseProtocol, split, type Manifest } from '../operators/split.js';
import { subset } from '../operators/subset.js';
import { balancedClassWeights, train } from '../operators/train.js';
import { assembleReport, renderMarkdown, type EpochRecord, type FeatureReport, type Report, type TrainingReport } from '../report.js';
import { loadCheckpoint, restoreWeights, saveCheckpoint, trainedVariables } from '../training/checkpoint.js';
import { learningRate } from '../training/schedule.js';
import { holdOut } from '../training/validation.js';
import { BASE_OPTIONS, type ExperimentOptions, type GraphDefinition } from './graph.js';

/** The study's speed figure: one inference pass over the whole dataset at batch 32. */
export const SPEED_BATCH = 32;

export interface Progress {
  phase: 'features' | 'train' | 'evaluate' | 'full pass';
  epoch: number;
  done: number;
  total: number;
}

export interface ExperimentHooks {
  onProgress?: (progress: Progress) => void;
  /** Called once per file that cannot be used, the first time it is met. */
  onSkip?: (skip: Skip) => void;
  onEpoch?: (record: EpochRecord, epochs: number) => void;
  /** One-line notices that do not stop the run. */
  onWarning?: (line: string) => void;
  /**
   * Aborting it stops the run at once: the epoch in progress is abandoned (the checkpoint of the
   * last finished epoch stays), `partial-report.json` is written and the run fails with {@link RunInterrupted}.
   */
  signal?: AbortSignal;
}

/** Where the run stands after each finished epoch; what a checkpoint restores. */
export interface RunState {
  /** The last finished epoch (0 before the first). */
  epoch: number;
  history: EpochRecord[];
  best: { epoch: number; valLoss: number } | null;
  stoppedEarly: boolean;
}

/** A checkpoint's JSON: the run's options (what `--resume` continues with) and its state. */
export interface CheckpointState {
  version: 1;
  graph: string;
  options: ExperimentOptions;
  run: RunState;
  /** Every random choice of an epoch (its shuffle, its augmentation) derives from (seed, epoch), so these two restore the random state. */
  random: { seed: number; nextEpoch: number };
}

/** The run stopped on request; what was finished is in the checkpoint and the partial report. */
export class RunInterrupted extends Error {
  constructor(
    readonly reason: string,
    readonly partialReport: string,
    readonly epochsDone: number,
  ) {
    super(`interrupted (${reason}) after ${epochsDone} finished epoch(s); partial report ${partialReport}`);
  }
}

export const CHECKPOINT_DIR = 'checkpoint';
export const MODEL_DIR = 'model';
export const PARTIAL_REPORT = 'partial-report.json';

const seconds = () => performance.now() / 1000;

const countImages = (p: { y: Int32Array } | { labels: Int32Array }) => ('y' in p ? p.y : p.labels).length;

/** `body` given the pool once it has started (or none); the pool ends with the subscription, even one ended while it was starting. */
function withPool<T>(starting: Promise<ParallelModel | undefined>, body: (pool: ParallelModel | undefined) => Observable<T>): Observable<T> {
  return new Observable<T>((subscriber) => {
    let ended = false;
    let pool: ParallelModel | undefined;
    const running = new Subscription();
    starting.then(
      (started) => {
        pool = started;
        if (ended) return void pool?.dispose();
        running.add(body(pool).subscribe(subscriber));
      },
      (error: unknown) => subscriber.error(error),
    );
    return () => {
      ended = true;
      running.unsubscribe();
      void pool?.dispose();
    };
  });
}

/**
 * Feature batches of `samples` (those that have features), in the given order. Each view (the
 * image, its mirror) is a training row of its own (`rows`), or the views are averaged (`mean`, for
 * evaluation).
 */
function featureBatches(samples: readonly Sample[], views: ReadonlyArray<ReadonlyMap<string, Float32Array>>, size: number, combine: 'rows' | 'mean'): FeatureBatch[] {
  const present = samples.filter((s) => views.every((v) => v.has(s.path)));
  const rows: Array<{ sample: Sample; features: Float32Array }> = present.flatMap((sample) => {
    const each = views.map((v) => v.get(sample.path)!);
    if (combine === 'rows') return each.map((features) => ({ sample, features }));
    const mean = new Float32Array(each[0]!.length);
    for (const f of each) for (let d = 0; d < mean.length; d++) mean[d]! += f[d]! / each.length;
    return [{ sample, features: mean }];
  });
  const out: FeatureBatch[] = [];
  for (let i = 0; i < rows.length; i += size) {
    const chunk = rows.slice(i, i + size);
    const dim = chunk[0]!.features.length;
    const features = new Float32Array(chunk.length * dim);
    chunk.forEach((row, r) => features.set(row.features, r * dim));
    out.push({ features, shape: [chunk.length, dim], y: Int32Array.from(chunk, (row) => row.sample.label), paths: chunk.map((row) => row.sample.path) });
  }
  return out;
}

/**
 * One architecture's experiment as an observable graph:
 * dataset → split → epochs → one timed inference pass over every image → report.
 * With a frozen backbone, the backbone's features are computed once (cached on disk) and every
 * epoch trains the head on them: [features → train → metrics] then [features → predict → metrics]
 * on the test images. Otherwise (a network trained whole, or `cache: false`) every epoch runs
 * [decode → augment → batch → prefetch → train → metrics] and [decode → batch → predict → metrics].
 */
export function experiment(graph: GraphDefinition, given: Partial<ExperimentOptions> & Pick<ExperimentOptions, 'data' | 'out'>, hooks: ExperimentHooks = {}): Observable<Report> {
  const options: ExperimentOptions = { ...BASE_OPTIONS, ...graph.defaults, ...given };
  return defer(() => {
    const startedAt = new Date();
    const meter = new Meter();
    const skipped = new Map<string, Skip>();
    const protocol = parseProtocol(options.testData ? 'external' : options.protocol);
    const skip = (s: Skip) => {
      if (skipped.has(s.path)) return;
      skipped.set(s.path, s);
      hooks.onSkip?.(s);
    };

    const withModel = (data: Split, model: Classifier) => {
      const optimizer = tf.train.adam(options.lr);
      const earlyStopping = options.patience !== undefined;
      const { fit, validation } = holdOut(data.train, options.valSplit || (earlyStopping ? 0.1 : 0), options.seed);
      const evaluated = validation.length > 0 ? validation : data.test;
      const trainOptions = {
        l2: options.l2,
        labelSmoothing: options.labelSmoothing,
        ...(options.classWeights === 'balanced' ? { classWeights: balancedClassWeights(fit.map((s) => s.label), data.classes.length) } : {}),
      };
      const decodeOptions = { size: model.inputSize, mode: options.resize, concurrency: options.concurrency, decoder: options.decoder };
      const classes = data.classes.length;
      const cache = model.backbone && options.cache && !options.fineTune ? new FeatureCache(join(cacheDir(), 'features'), { model: model.name, weights: model.weights, preprocessing: model.preprocessing, inputSize: model.inputSize, resize: options.resize, decoder: options.decoder }) : null;

      /** decode → [augment | mirror] → batch under a prefetch bound, ending in `consume`. */
      const feed = <T extends { labels: Int32Array } | { y: Int32Array }>(samples: Sample[], epoch: number, batchSize: number, prepare: 'plain' | 'augment' | 'mirror', consume: (batches: Observable<ImageBatch>) => Observable<T>) => {
        const pull = prefetch(options.prefetch * batchSize);
        const decoded = pull.source(samples).pipe(measure(meter, 'decode', decode({ ...decodeOptions, onSkip: (s) => (skip(s), pull.drop()) })));
        const images =
          prepare === 'augment' ? decoded.pipe(measure(meter, 'augment', augment({ seed: options.seed, epoch }))) : prepare === 'mirror' ? decoded.pipe(map(mirror)) : decoded;
        return consume(images.pipe(measure(meter, 'batch', batch(batchSize), countImages))).pipe(pull.consumed<T>(countImages));
      };
      const progressOf = <T extends { labels: Int32Array } | { y: Int32Array }>(phase: Progress['phase'], epoch: number, total: number) => {
        let done = 0;
        return map((p: T) => {
          done += countImages(p);
          hooks.onProgress?.({ phase, epoch, done, total });
          return p;
        });
      };
      /** Worker threads for inference on wasm (`options.workers` of them), or none: compute here. */
      const inferencePool = (network: LayersModel): Promise<ParallelModel | undefined> =>
        options.workers > 0 && tf.getBackend() === 'wasm' ? ParallelModel.create(network, { workers: options.workers, backend: 'wasm' }) : Promise.resolve(undefined);
      const summary = (epoch: number, phase: 'train' | 'evaluate', total: number) => (predictions: Observable<Predictions>) =>
        predictions.pipe(progressOf<Predictions>(phase, epoch, total), measure(meter, 'metrics', metrics(classes)), last(null, summarize(emptyTally(classes))));

      const views: ReadonlyArray<'plain' | 'mirror'> = options.views === 2 ? ['plain', 'mirror'] : ['plain'];
      let cacheWritable = true;

      /** Backbone features of every image (one table per view), from the cache or computed (and cached) now. */
      const computeFeatures = async (running: Subscription): Promise<Array<Map<string, Float32Array>>> => {
        const all = [...data.train, ...data.test];
        const dim = model.backbone!.outputs[0]!.shape[1] as number;
        const limit = pLimit(16);
        const keys = await Promise.all(all.map((s) => limit(() => FeatureCache.contentKey(s.path).catch(() => null))));
        const keyOf = new Map(all.map((s, i) => [s.path, keys[i]] as const));
        const tables: Array<Map<string, Float32Array>> = [];
        let pool: ParallelModel | undefined;
        for (const view of views) {
          const table = new Map<string, Float32Array>();
          const entry = (path: string) => (keyOf.get(path) ? `${keyOf.get(path)}${view === 'mirror' ? '-mirror' : ''}` : null);
          const misses: Sample[] = [];
          await Promise.all(
            all.map((s) =>
              limit(async () => {
                const key = entry(s.path);
                const hit = key ? await cache!.get(key, dim) : null;
                if (hit) table.set(s.path, hit);
                else misses.push(s);
              }),
            ),
          );
          misses.sort((a, b) => a.label - b.label || (a.path < b.path ? -1 : 1));
          if (misses.length > 0 && !pool) {
            // started once for every view
            const started = await inferencePool(model.backbone!);
            pool = started;
            if (started) running.add(() => void started.dispose());
          }
          await drain(
            running,
            feed<FeatureBatch>(misses, 0, options.batch, view, (b) => b.pipe(measure(meter, 'embed', embed(model, pool), countImages))).pipe(
              progressOf<FeatureBatch>('features', 1, misses.length),
              concatMap(async (fb) => {
                for (let r = 0; r < fb.paths.length; r++) {
                  const row = fb.features.slice(r * fb.shape[1], (r + 1) * fb.shape[1]);
                  table.set(fb.paths[r]!, row);
                  const key = entry(fb.paths[r]!);
                  if (key && cacheWritable) {
                    await cache!.set(key, row).catch((error: unknown) => {
                      cacheWritable = false;
                      hooks.onWarning?.(`feature cache not written (${(error as NodeJS.ErrnoException).code ?? String(error)}): ${cache!.dir}; features are kept in memory for this run`);
                    });
                  }
                }
                return fb;
              }),
            ),
          );
          tables.push(table);
          if (running.closed) break;
        }
        await pool?.dispose();
        return tables;
      };
      /** Computed once and replayed to every epoch; unsubscribed before it is done (an interrupted run), it stops. */
      const features = new Observable<Array<Map<string, Float32Array>>>((subscriber) => {
        const running = new Subscription();
        computeFeatures(running).then(
          (tables) => {
            subscriber.next(tables);
            subscriber.complete();
          },
          (error: unknown) => subscriber.error(error),
        );
        return running;
      }).pipe(shareReplay({ bufferSize: 1, refCount: true }));

      /** From cached features, or through the decode pipeline with `step` inside the prefetch bound. */
      const stepsOver = <T extends Predictions>(samples: Sample[], epoch: number, training: boolean, step: OperatorFunction<Batch, T>): Observable<T> =>
        cache
          ? features.pipe(concatMap((tables) => from(featureBatches(samples, tables, options.batch, training ? 'rows' : 'mean'))), step)
          : feed<T>(samples, epoch, options.batch, training && options.augment ? 'augment' : 'plain', (b) => b.pipe(step));

      const trainEpoch = (epoch: number): Observable<EpochRecord> => {
        const start = seconds();
        const lr = learningRate(options.lr, options.lrSchedule, epoch, options.epochs, options.warmup);
        // tfjs optimizers read their learning rate at every step but expose no setter for schedules
        (optimizer as unknown as { learningRate: number }).learningRate = lr;
        const order = shuffled(fit, randomFor(options.seed, 'epoch', epoch));
        return stepsOver(order, epoch, true, measure(meter, 'train', train(model, optimizer, trainOptions), countImages)).pipe(
          summary(epoch, 'train', order.length),
          concatMap((fitted: Metrics) =>
            stepsOver(evaluated, epoch, false, measure(meter, 'predict', predict(model), countImages)).pipe(
              summary(epoch, 'evaluate', evaluated.length),
              map((val) => ({ epoch, loss: fitted.loss, top1: fitted.top1, valLoss: val.loss, valTop1: val.top1, lr, seconds: seconds() - start })),
            ),
          ),
        );
      };

      /** Updates the run state with a finished epoch and checkpoints it (weights, optimizer, best weights, history). */
      const finishEpoch = async (record: EpochRecord): Promise<EpochRecord> => {
        run.history.push(record);
        run.epoch = record.epoch;
        if (run.best === null || record.valLoss < run.best.valLoss) {
          run.best = { epoch: record.epoch, valLoss: record.valLoss };
          if (earlyStopping) {
            bestWeights?.forEach((t) => t.dispose());
            bestWeights = trainedVariables(model).map((v) => tf.clone(v.read()));
          }
        }
        if (earlyStopping && record.epoch - run.best.epoch >= options.patience!) run.stoppedEarly = true;
        const slots = await optimizer.getWeights();
        const state: CheckpointState = { version: 1, graph: graph.name, options, run, random: { seed: options.seed, nextEpoch: record.epoch + 1 } };
        try {
          checkpointWrite = saveCheckpoint(join(options.out, CHECKPOINT_DIR), record.epoch, state, { weights: trainedVariables(model).map((v) => v.read()), optimizer: slots, best: bestWeights });
          await checkpointWrite;
        } finally {
          slots[0]!.tensor.dispose(); // the iteration count is a fresh scalar; the rest are the optimizer's own variables
        }
        hooks.onEpoch?.(record, options.epochs);
        return record;
      };

      /** The study's speed figure: decode → backbone → head over every image (test first), timed. */
      const fullPass = (whole: LayersModel) =>
        withPool(inferencePool(whole), (pool) => {
          // timed once the workers are up, as a loaded model is timed
          const start = seconds();
          const progress = progressOf<Predictions>('full pass', 0, data.test.length + data.train.length);
          const pass = (samples: Sample[], seed: Tally) =>
            feed<Predictions>(samples, 0, SPEED_BATCH, 'plain', (b) => b.pipe(measure(meter, 'predict', predict(model, pool), countImages))).pipe(progress, reduce(addPredictions, seed));
          return pass(data.test, emptyTally(classes)).pipe(
            concatMap((test) => pass(data.train, test).pipe(map((all) => ({ test: summarize(test), all: summarize(all), seconds: seconds() - start, workers: pool?.size ?? 0 })))),
          );
        });

      const featureReport = (): FeatureReport =>
        cache
          ? {
              cached: true,
              augmentation: views.length > 1 ? 'mirror views: the head trains on cached features of each image and its mirror; evaluation averages both' : 'off: the head trains on cached features of un-augmented images',
              dir: cache.dir,
              hits: cache.hits,
              misses: cache.misses,
              corrupt: cache.corrupt,
            }
          : { cached: false, augmentation: options.augment ? 'on: every epoch decodes and augments anew' : 'off', dir: null, hits: 0, misses: 0, corrupt: 0, ...(options.fineTune ? { fineTunedBlocks: options.fineTune } : {}) };

      const run: RunState = { epoch: 0, history: [], best: null, stoppedEarly: false };
      let bestWeights: tf.Tensor[] | null = null;
      let resumedAfterEpoch: number | null = null;
      let whole: LayersModel | null = null;
      progress = { run, pending: () => checkpointWrite };

      /** Picks up the checkpoint in `out` (with `resume`): weights, optimizer slots, best weights and history. */
      const resume = defer(async () => {
        if (!options.resume) return;
        const checkpoint = await loadCheckpoint<CheckpointState>(join(options.out, CHECKPOINT_DIR));
        if (!checkpoint) return;
        const { weights, optimizer: slots, best } = checkpoint.tensors;
        try {
          restoreWeights(model, weights);
          await optimizer.setWeights(slots);
        } finally {
          [...weights, ...slots.map((s) => s.tensor)].forEach((t) => t.dispose());
        }
        bestWeights = best;
        Object.assign(run, checkpoint.state.run);
        resumedAfterEpoch = run.epoch;
      });

      const trainingReport = (): TrainingReport => ({
        epochsPlanned: options.epochs,
        epochsRun: run.epoch,
        bestEpoch: run.best?.epoch ?? 0,
        stoppedEarly: run.stoppedEarly,
        restoredBest: earlyStopping && bestWeights !== null,
        validation: validation.length > 0 ? 'held-out training images' : 'test images',
        validationImages: evaluated.length,
        lrSchedule: options.lrSchedule,
        warmup: options.warmup,
        patience: options.patience ?? null,
        resumedAfterEpoch,
      });

      const epochs = defer(() => range(run.epoch + 1, Math.max(0, run.stoppedEarly ? 0 : options.epochs - run.epoch))).pipe(
        concatMap((epoch) => trainEpoch(epoch).pipe(concatMap(finishEpoch))),
        takeWhile(() => !run.stoppedEarly, true),
      );

      return resume.pipe(
        concatMap(() => epochs),
        toArray(),
        concatMap(async () => {
          if (earlyStopping && bestWeights) restoreWeights(model, bestWeights);
          whole = asLayersModel(model);
          return saveModel(whole, join(options.out, MODEL_DIR), { preprocessing: model.preprocessing, inputSize: model.inputSize, classNames: data.classes.map((c) => c.name) });
        }),
        concatMap((savedBytes) =>
          fullPass(whole!).pipe(
            map((pass) =>
              assembleReport({
                graph: graph.name,
                model,
                data,
                history: run.history,
                training: trainingReport(),
                savedBytes,
                pass,
                skipped: [...skipped.values()],
                operators: meter.snapshot(),
                options,
                startedAt,
                speedBatch: SPEED_BATCH,
                features: featureReport(),
              }),
            ),
          ),
        ),
        finalize(() => {
          optimizer.dispose();
          bestWeights?.forEach((t) => t.dispose());
          whole?.dispose();
          disposeClassifier(model);
        }),
      );
    };

    let checkpointWrite: Promise<unknown> = Promise.resolve();
    let progress: { run: RunState; pending: () => Promise<unknown> } | null = null;
    const interrupted = hooks.signal ? (hooks.signal.aborted ? from([0]) : fromEvent(hooks.signal, 'abort')) : NEVER;

    /** On interruption: what finished, written atomically beside the checkpoint. */
    const writePartialReport = async (): Promise<never> => {
      await progress?.pending().catch(() => undefined);
      const run = progress?.run ?? { epoch: 0, history: [], best: null, stoppedEarly: false };
      const path = join(options.out, PARTIAL_REPORT);
      const reason = String(hooks.signal?.reason ?? 'aborted');
      await writeJsonAtomic(path, {
        status: 'interrupted',
        reason,
        graph: graph.name,
        model: graph.model,
        epochsPlanned: options.epochs,
        epochsDone: run.epoch,
        history: run.history,
        best: run.best,
        checkpoint: run.epoch > 0 ? join(options.out, CHECKPOINT_DIR) : null,
        resume: `npm run graph -- --resume ${options.out}`,
        options,
        startedAt: startedAt.toISOString(),
        interruptedAt: new Date().toISOString(),
      });
      throw new RunInterrupted(reason, path, run.epoch);
    };

    const testData = options.testData ? measureSource(meter, 'discover', discover(options.testData, { exclude: options.exclude })) : undefined;
    return measureSource(meter, 'discover', discover(options.data, { exclude: options.exclude })).pipe(
      subset(options.limit, options.seed),
      split({ protocol, seed: options.seed, ...(testData ? { testData: testData.pipe(subset(options.limit, options.seed)) } : {}) }),
      concatMap(async (data) => {
        data.skipped.forEach(skip);
        if (data.shortClasses.length > 0) {
          hooks.onWarning?.(`${data.protocol} left out ${data.shortClasses.length} class(es) with too few images: ${data.shortClasses.map((c) => `${c.id} (${c.images})`).join(', ')}`);
        }
        if (data.train.length === 0) throw new Error(`the split (${data.protocol}) left no training images`);
        const manifest = manifestOf(data);
        if (options.resume) await assertSameManifest(join(options.out, 'manifest.json'), manifest);
        await writeJsonAtomic(join(options.out, 'manifest.json'), manifest);
        return data;
      }),
      switchMap((data) =>
        from(createModel(graph.model, { classes: data.classes.length, weights: options.weights, weightsDir: options.weightsDir, inputSize: options.imageSize, alpha: options.alpha, seed: options.seed, fineTune: options.fineTune, featureNorm: options.featureNorm })).pipe(
          switchMap((model) => withModel(data, model)),
        ),
      ),
      takeUntil(interrupted),
      defaultIfEmpty(null),
      concatMap(async (report) => {
        if (report === null) return writePartialReport();
        await writeJsonAtomic(join(options.out, 'report.json'), report);
        await writeFileAtomic(join(options.out, 'report.md'), renderMarkdown(report));
        await rm(join(options.out, PARTIAL_REPORT), { force: true });
        return report;
      }),
    );
  });
}

/** A resumed run must see the very split its checkpoint was trained on. */
async function assertSameManifest(path: string, manifest: Manifest): Promise<void> {
  const saved = await readFile(path, 'utf8').catch(() => null);
  if (saved === null) return;
  if (JSON.stringify(JSON.parse(saved)) !== JSON.stringify(manifest)) {
    throw new Error(`the dataset or split differs from the one the checkpoint in ${dirname(path)} was trained on (${path}); resume with the same data, or start a new run`);
  }
}

/** Runs `source` to completion for its side effects, or until `owner` is unsubscribed. */
function drain<T>(owner: Subscription, source: Observable<T>): Promise<void> {
  return new Promise((resolve, reject) => {
    if (owner.closed) return resolve();
    owner.add(source.subscribe({ error: reject, complete: () => resolve() }));
    owner.add(() => resolve());
  });
}
