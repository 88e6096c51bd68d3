import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { concat, concatMap, defaultIfEmpty, defer, EMPTY, filter, finalize, from, fromEvent, ignoreElements, map, NEVER, Observable, takeUntil, toArray, type OperatorFunction } from 'rxjs';
import type { Batch, Predictions, Sample, Split } from '../core/types.js';
import { describeEngine } from '../engines/engine.js';
import { openEngine, type InferenceEngine } from '../engines/index.js';
import { createEnsemble, createModel, disposeClassifier, ENSEMBLE_MODEL, isEnsemble, UnsplittableError, type Classifier, type EnsembleClassifier } from '../models/index.js';
import { EnsembleEngine } from '../engines/ensemble.js';
import type { Preprocessing } from '../models/preprocessing.js';
import { asLayersModel, saveModel } from '../models/persistence.js';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { exportOnnx } from '../onnx/export.js';
import { cacheDir } from '../models/weights.js';
import { Meter } from '../operators/measure.js';
import { balancedClassWeights } from '../operators/train.js';
import { assembleReport, type EpochRecord, type FeatureReport, type Report } from '../report.js';
import { CHECKPOINT_DIR, newRunState, type RunState } from '../stages/callbacks.js';
import { prepareData, writeManifest, type PreparedData } from '../stages/data.js';
import { type BatchSource, type EpochContext } from '../stages/epoch.js';
import { fitStage, type ResumedStage } from '../stages/fit.js';
import { SkipLog, toHooks, type Emit, type ExperimentHooks, type RunEvent } from '../stages/events.js';
import { ensembleFeatures, featureBatches, FeatureStore, type FeatureTables, type View } from '../stages/features.js';
import { imageFeed, type FeedOptions } from '../stages/feed.js';
import { fullPass, SPEED_BATCH } from '../stages/full-pass.js';
import { writeTestPredictions } from '../stages/predictions.js';
import { planStages, stageEpochs, type StagePlan } from '../stages/plan.js';
import { SplitNetwork } from '../stages/split.js';
import { RunInterrupted, writePartialReport, writeReport } from '../stages/report-writer.js';
import { loadCheckpoint, restoreWeights } from '../training/checkpoint.js';
import { holdOut } from '../training/validation.js';
import { BASE_OPTIONS, recipeOf, type ExperimentOptions, type GraphDefinition } from './graph.js';

export { CHECKPOINT_DIR, type RunState } from '../stages/callbacks.js';
export { PARTIAL_REPORT, RunInterrupted } from '../stages/report-writer.js';
export { SPEED_BATCH } from '../stages/full-pass.js';
export type { ExperimentHooks, Progress, RunEvent } from '../stages/events.js';

export const MODEL_DIR = 'model';
/** The trained classifier exported to ONNX, beside the tfjs files in {@link MODEL_DIR}. */
export const ONNX_FILE = 'model.onnx';

/** A checkpoint's JSON: the run's options (what `--resume` continues with) and its state. */
export interface CheckpointState {
  version: 1;
  graph: string;
  options: ExperimentOptions;
  run: RunState;
  /** Every random choice of an epoch (its shuffle, its augmentation) derives from (seed, epoch), so these two restore the random state. */
  random: { seed: number; nextEpoch: number };
}

/** What a run is given besides its options: nothing in it is saved with the run, so a resumed run takes its own. */
export interface RunContext {
  /** Where feature caches live (default: `features` under rxcnn's cache folder). */
  cacheRoot: string;
  /** The tfjs backend training runs on, as reports name it (default: the active one). */
  backend: string;
  /** The data, already prepared (compare prepares it once for every model). */
  prepared?: PreparedData;
  signal?: AbortSignal;
}

type Given = Partial<ExperimentOptions> & Pick<ExperimentOptions, 'data' | 'out'>;

/**
 * One architecture's experiment: prepare the data → create the model → its stages (each a
 * sequence of epochs: train, evaluate, epoch-end callbacks) → save → one timed inference pass over
 * every image → report. Emits the run's events as they happen, and `done` with the report last.
 */
export function experimentEvents(graph: GraphDefinition, given: Given, context: Partial<RunContext> = {}): Observable<RunEvent> {
  const options: ExperimentOptions = { ...BASE_OPTIONS, ...recipeOf(graph, given.alpha).defaults, ...given };
  return new Observable<RunEvent>((subscriber) => {
    const emit: Emit = (event) => subscriber.next(event);
    const run = newRunState();
    const pending: Array<() => Promise<unknown>> = [];
    const { signal } = context;
    const stopped = signal ? (signal.aborted ? from([0]) : fromEvent(signal, 'abort')) : NEVER;
    const startedAt = new Date();
    const meter = new Meter();
    const skips = new SkipLog(emit);
    const work = defer(async () => {
      const data = context.prepared ?? (await prepareData(options, meter));
      data.split.skipped.forEach(skips.add);
      data.warnings.forEach((line) => emit({ type: 'warning', line }));
      // prepared data comes with its manifest kept by whoever prepared it (compare: one for every model)
      if (!context.prepared) await writeManifest(options.out, data.manifest, options.resume === true);
      const classes = data.split.classes.length;
      const model =
        graph.model === ENSEMBLE_MODEL
          ? await createEnsemble({ members: options.members ?? [], classes, weights: options.weights, weightsDir: options.weightsDir, inputSize: options.imageSize, ...(options.featureNorm ? { featureNorm: options.featureNorm } : {}), seed: options.seed })
          : await createModel(graph.model, { classes, weights: options.weights, weightsDir: options.weightsDir, inputSize: options.imageSize, alpha: options.alpha, seed: options.seed, fineTune: options.fineTune, ...(options.featureNorm ? { featureNorm: options.featureNorm } : {}) }); // 0: raw features
      return { data: data.split, model };
    }).pipe(
      concatMap(({ data, model }) => {
        const session = new Session(graph, options, { cacheRoot: context.cacheRoot ?? join(cacheDir(), 'features'), backend: context.backend ?? tf.getBackend() }, data, model, meter, skips, emit, run, pending);
        return session.report(startedAt).pipe(finalize(() => session.dispose()));
      }),
      takeUntil(stopped),
      defaultIfEmpty(null),
      concatMap(async (report) => {
        if (report !== null) return (await writeReport(options.out, report), report);
        await Promise.all(pending.map((p) => p().catch(() => undefined)));
        const reason = String(signal?.reason ?? 'aborted');
        const resume = `npm run graph -- --resume ${JSON.stringify(options.out)}`;
        const path = await writePartialReport(options.out, { reason, graph: graph.name, model: graph.model, epochsPlanned: plannedEpochs(options), run, checkpoint: run.epoch > 0 ? join(options.out, CHECKPOINT_DIR) : null, resume, options, startedAt });
        throw new RunInterrupted(reason, path, run.epoch, resume);
      }),
    );
    return work.subscribe({ next: (report) => subscriber.next({ type: 'done', report }), error: (e: unknown) => subscriber.error(e), complete: () => subscriber.complete() });
  });
}

/** {@link experimentEvents} with its events handed to `hooks`; emits the report. */
export function experiment(graph: GraphDefinition, given: Given, hooks: ExperimentHooks = {}, context: Partial<RunContext> = {}): Observable<Report> {
  const dispatch = toHooks(hooks);
  return experimentEvents(graph, given, { ...context, ...(hooks.signal ? { signal: hooks.signal } : {}) }).pipe(
    filter((event): event is Extract<RunEvent, { type: 'done' }> => {
      dispatch(event);
      return event.type === 'done';
    }),
    map((event) => event.report),
  );
}

const plannedEpochs = (o: ExperimentOptions) => o.epochs + (o.fineTune && o.fineTuneEpochs ? o.fineTuneEpochs : 0);

/** One run's model and data, and the stages put together over them. */
class Session {
  private readonly stages: StagePlan[];
  private readonly fit: Sample[];
  private readonly evaluated: Sample[];
  private readonly validation: boolean;
  /** One per frozen backbone: the model's, or each ensemble member's (its own cache key, input, engine). */
  private readonly stores: FeatureStore[];
  private readonly features: Observable<FeatureTables> | null;
  /** The backbone's per-layer trainable flags as `fineTune` set them, for the stages that tune it. */
  private readonly tunedLayers: boolean[];
  private readonly epochContext: (plan: StagePlan, split: SplitNetwork | null) => EpochContext;
  /** Where each stage that tuned the backbone cut it, and which engine ran its frozen prefix (by stage index). */
  private readonly prefixes = new Map<number, { cut: string; engine: string | null }>();
  private resumedAfterEpoch: number | null = null;
  private restoredBest = false;
  private whole: ReturnType<typeof asLayersModel> | null = null;

  constructor(
    private readonly graph: GraphDefinition,
    private readonly options: ExperimentOptions,
    private readonly context: Pick<RunContext, 'cacheRoot' | 'backend'>,
    private readonly data: Split,
    private readonly model: Classifier,
    private readonly meter: Meter,
    private readonly skips: SkipLog,
    private readonly emit: Emit,
    private readonly run: RunState,
    private readonly pending: Array<() => Promise<unknown>>,
  ) {
    this.stages = planStages(options, model);
    const held = holdOut(data.train, options.valSplit || (this.stages.some((s) => s.patience !== undefined) ? 0.1 : 0), options.seed);
    this.fit = held.fit;
    this.validation = held.validation.length > 0;
    this.evaluated = this.validation ? held.validation : data.test;
    this.tunedLayers = model.backbone?.layers.map((l) => l.trainable) ?? [];
    const views: View[] = options.views === 2 ? ['plain', 'mirror'] : ['plain'];
    const backbones = model.members ?? [model];
    this.stores = this.stages.some((s) => s.input === 'features')
      ? backbones.map(
          (member) =>
            new FeatureStore(member, {
              root: context.cacheRoot,
              resize: options.resize,
              decoder: options.decoder,
              views,
              meter,
              engine: () => this.openEngine(member.backbone!, member.preprocessing),
              feed: (samples, view, consume) => imageFeed(samples, this.feedOptions(options.batch, view), consume),
              onProgress: (done, total) => emit({ type: 'progress', progress: { phase: 'features', epoch: 1, done, total } }),
              onWarning: (line) => emit({ type: 'warning', line }),
            }),
        )
      : [];
    const all = [...data.train, ...data.test];
    this.features = isEnsemble(model) ? ensembleFeatures(this.stores, all, model.featureNorm) : (this.stores[0]?.load(all) ?? null);
    this.epochContext = (plan, split) => ({ model, ...(split ? { network: split.network } : {}), meter, source: this.source(plan, split), onProgress: (progress) => emit({ type: 'progress', progress }) });
  }

  private feedOptions(batch: number, prepare: FeedOptions['prepare'], epoch = 0): FeedOptions {
    const { options } = this;
    return { bound: options.prefetch * batch, batch, size: this.model.inputSize, resize: options.resize, decoder: options.decoder, concurrency: options.concurrency, prepare, augment: { seed: options.seed, epoch, root: this.data.roots.train }, meter: this.meter, onSkip: this.skips.add };
  }

  /**
   * A stage's batches: the cached features (views as rows to train, averaged to evaluate), or
   * decoded images — with a split backbone, put through its frozen prefix on the engine first, so
   * the steps get the activations at the cut.
   */
  private source(plan: StagePlan, split: SplitNetwork | null): BatchSource {
    const { options } = this;
    return <T extends Predictions>(samples: readonly Sample[], epoch: number, training: boolean, step: OperatorFunction<Batch, T>) =>
      plan.input === 'features'
        ? this.features!.pipe(concatMap((tables) => from(featureBatches(samples, tables, options.batch, training ? 'rows' : 'mean'))), step)
        : imageFeed(samples, this.feedOptions(options.batch, training && plan.augment ? 'augment' : 'plain', epoch), (b) => (split ? b.pipe(split.activations(this.meter), step) : b.pipe(step)));
  }

  /**
   * For a stage that tunes the backbone: the network cut where its trainable blocks begin, the
   * frozen prefix on the run's inference engine. Null when it cannot be cut (a residual connection
   * over the cut, or every block trains): the stage then runs the whole network on tfjs, as it says.
   */
  private split(plan: StagePlan): SplitNetwork | null {
    const { model } = this;
    if (!plan.tuneBackbone || !model.backbone) return null;
    try {
      return new SplitNetwork(model, (cut) => this.openEngine(model.backbone!, model.preprocessing, undefined, cut));
    } catch (error) {
      if (!(error instanceof UnsplittableError)) throw error;
      this.notice(`the ${plan.name} stage runs the whole network on tfjs: ${error.message}`);
      return null;
    }
  }

  /** Makes trainable what the stage trains: the head alone, or the head and the backbone's unfrozen blocks. */
  private setTrainable(plan: StagePlan): void {
    const backbone = this.model.backbone;
    if (!backbone) return;
    backbone.trainable = plan.tuneBackbone;
    if (plan.tuneBackbone) backbone.layers.forEach((layer, i) => (layer.trainable = this.tunedLayers[i]!));
  }

  /** The checkpoint in `out` (with `resume`): weights restored; the optimizer's slots and best weights for the stage to take. */
  private async resume(): Promise<ResumedStage | null> {
    if (!this.options.resume) return null;
    const checkpoint = await loadCheckpoint<CheckpointState>(join(this.options.out, CHECKPOINT_DIR));
    if (!checkpoint) return null;
    Object.assign(this.run, { stage: 0 }, checkpoint.state.run);
    const { weights, optimizer: slots, best } = checkpoint.tensors;
    try {
      this.setTrainable(this.stages[this.run.stage!]!);
      restoreWeights(this.model, weights);
    } catch (error) {
      [...slots.map((s) => s.tensor), ...(best ?? [])].forEach((t) => t.dispose());
      throw error;
    } finally {
      weights.forEach((t) => t.dispose());
    }
    this.resumedAfterEpoch = this.run.epoch;
    return { slots, best };
  }

  /** Stage `index` from where the run stands, trained as it plans (what trains, on what). */
  private stage(index: number, resumed: ResumedStage | null): Observable<EpochRecord> {
    const { options, run, model } = this;
    const plan = this.stages[index]!;
    this.setTrainable(plan);
    const split = this.split(plan);
    const close = async () => {
      if (!split) return;
      this.prefixes.set(index, { cut: split.cut, engine: split.prefixEngine ? describeEngine(split.prefixEngine) : null });
      await split.close();
    };
    const fitted = fitStage<CheckpointState>({
      plan,
      span: stageEpochs(this.stages, index),
      run,
      index,
      ctx: this.epochContext(plan, split),
      fit: this.fit,
      evaluated: this.evaluated,
      seed: options.seed,
      lrSchedule: options.lrSchedule,
      warmup: options.warmup,
      ...(plan.patience !== undefined ? { patience: plan.patience } : {}),
      train: { l2: options.l2, labelSmoothing: options.labelSmoothing, ...(options.classWeights === 'balanced' ? { classWeights: balancedClassWeights(this.fit.map((s) => s.label), model.classes) } : {}) },
      out: options.out,
      state: (record) => ({ version: 1, graph: this.graph.name, options, run, random: { seed: options.seed, nextEpoch: record.epoch + 1 } }),
      resumed,
      onEpoch: (record) => this.emit({ type: 'epoch', record, epochs: plannedEpochs(options) }),
      onCheckpointer: (pending) => this.pending.push(pending),
      onEnd: (restoredBest) => (this.restoredBest = restoredBest),
    });
    // the engine is released when the stage ends, or with the subscription (an interrupted run)
    return concat(fitted, defer(close).pipe(ignoreElements())).pipe(finalize(() => void close()));
  }

  /** Every stage from where the run stands → save → the timed full pass → the report. */
  report(startedAt: Date): Observable<Report> {
    const { options, model, data, run } = this;
    return from(this.resume()).pipe(
      concatMap((resumed) => concat(...this.stages.map((_, i) => defer(() => (i < run.stage! ? EMPTY : this.stage(i, i === run.stage && resumed ? resumed : null)))))),
      toArray(),
      concatMap(() => (isEnsemble(model) ? this.saveEnsemble(model) : this.saveWhole())),
      concatMap(({ savedBytes, open }) =>
        withEngine(
          open,
          (engine) =>
            fullPass(engine, data, {
              model,
              meter: this.meter,
              tta: options.tta,
              feed: (samples, consume, prepare = 'plain') => imageFeed(samples, this.feedOptions(SPEED_BATCH, prepare), consume),
              onProgress: (done, total) => this.emit({ type: 'progress', progress: { phase: 'full pass', epoch: 0, done, total } }),
            }),
        ).pipe(
          // kept for compare's ensemble row, which averages its members' test probabilities
          concatMap(async (pass) => (await writeTestPredictions(options.out, pass.predictions, data.classes.map((c) => c.name), options.tta), pass)),
          map((pass) =>
            assembleReport({
              graph: this.graph.name,
              model,
              data,
              history: run.history,
              training: {
                epochsPlanned: plannedEpochs(options),
                epochsRun: run.epoch,
                bestEpoch: run.best?.epoch ?? 0,
                stoppedEarly: run.stoppedEarly,
                restoredBest: this.restoredBest,
                validation: this.validation ? 'held-out training images' : 'test images',
                validationImages: this.evaluated.length,
                lrSchedule: options.lrSchedule,
                warmup: options.warmup,
                patience: this.stages.at(-1)!.patience ?? null,
                resumedAfterEpoch: this.resumedAfterEpoch,
                stages: this.stages.map(({ name, epochs, lr, input }, i) => {
                  const span = stageEpochs(this.stages, i);
                  const ran = run.history.filter((h) => h.epoch > span.first && h.epoch <= span.last);
                  const prefix = this.prefixes.get(i);
                  return { name, epochs, lr, input, patience: this.stages[i]!.patience ?? null, epochsRun: ran.length, seconds: ran.reduce((t, h) => t + h.seconds, 0), ...(prefix ? { frozenPrefix: prefix } : {}) };
                }),
              },
              savedBytes,
              pass,
              backend: this.context.backend,
              skipped: this.skips.all,
              operators: this.meter.snapshot(),
              options,
              startedAt,
              speedBatch: SPEED_BATCH,
              features: this.featureReport(),
            }),
          ),
        ),
      ),
    );
  }

  /** The trained classifier saved (tfjs and ONNX); the full pass's engine runs the saved ONNX file, so what ships is what was measured. */
  private async saveWhole(): Promise<{ savedBytes: number; open: () => Promise<InferenceEngine> }> {
    const { model, options, data } = this;
    this.whole = asLayersModel(model);
    const onnx = this.exportWhole();
    const savedBytes = await saveModel(this.whole, join(options.out, MODEL_DIR), { preprocessing: model.preprocessing, inputSize: model.inputSize, classNames: data.classes.map((c) => c.name) }, onnx ? { [ONNX_FILE]: onnx } : {});
    const file = onnx ? join(options.out, MODEL_DIR, ONNX_FILE) : undefined;
    return { savedBytes, open: () => this.openEngine(this.whole!, model.preprocessing, file) };
  }

  /**
   * An ensemble saved as its parts — `model/members/<member>/` (each frozen backbone) and
   * `model/head/` — their bytes together its size; its full pass runs each member's backbone on
   * its own engine, then the head ({@link EnsembleEngine}).
   */
  private async saveEnsemble(model: EnsembleClassifier): Promise<{ savedBytes: number; open: () => Promise<InferenceEngine> }> {
    const { options, data } = this;
    const dir = join(options.out, MODEL_DIR);
    // the head takes the members' features, not pixels: its metadata is there for the class names
    let savedBytes = await saveModel(model.head, join(dir, 'head'), { preprocessing: 'raw', inputSize: model.inputSize, classNames: data.classes.map((c) => c.name) });
    for (const member of model.members) savedBytes += await saveModel(member.backbone!, join(dir, 'members', member.name), { preprocessing: member.preprocessing, inputSize: member.inputSize });
    const open = async () => {
      const engines: InferenceEngine[] = [];
      try {
        for (const member of model.members) engines.push(await this.openEngine(member.backbone!, member.preprocessing));
      } catch (error) {
        await Promise.all(engines.map((e) => e.dispose()));
        throw error;
      }
      return new EnsembleEngine(engines, model.head, model.featureNorm);
    };
    return { savedBytes, open };
  }

  /** The inference engine the run asked for, on `network` (or on its saved ONNX file); notices said once per run. */
  private openEngine(network: LayersModel, preprocessing: Preprocessing, onnx?: string, upTo?: string): Promise<InferenceEngine> {
    const { options } = this;
    return openEngine(network, { preprocessing, workers: options.workers, engine: options.engine, provider: options.provider, ...(onnx ? { onnx } : {}), ...(upTo ? { upTo } : {}), onNotice: (line) => this.notice(line) });
  }

  private readonly noticed = new Set<string>();
  private notice(line: string): void {
    if (this.noticed.has(line)) return;
    this.noticed.add(line);
    this.emit({ type: 'warning', line });
  }

  /** The trained classifier as ONNX (uint8 pixels in, probabilities out), or null with a warning when a layer does not export. */
  private exportWhole(): Uint8Array | null {
    try {
      return exportOnnx(this.whole!, { preprocessing: this.model.preprocessing }).bytes;
    } catch (error) {
      this.notice(`${MODEL_DIR}/${ONNX_FILE} not written: ${(error as Error).message}`);
      return null;
    }
  }

  private featureReport(): FeatureReport {
    const { options } = this;
    const store = this.stores[0];
    const tuned = this.stages.find((s) => s.tuneBackbone) ? { fineTunedBlocks: options.fineTune! } : {};
    const then = this.stages.length > 1 ? '; then the fine-tuning stage decodes and augments anew every epoch' : '';
    if (!store) return { cached: false, augmentation: options.augment ? 'on: every epoch decodes and augments anew' : 'off', dir: null, hits: 0, misses: 0, corrupt: 0, ...tuned };
    const views =
      store.views.length > 1
        ? `mirror views: the head trains on cached features of each image and its mirror, and the per-epoch "val" figures average both; the test figures (the full pass) are ${options.tta === 'flip' ? "each test image's averaged with its mirror's (flip TTA)" : 'of the plain images'}`
        : 'off: the head trains on cached features of un-augmented images';
    const sum = (count: (s: FeatureStore) => number) => this.stores.reduce((n, s) => n + count(s), 0);
    const members = this.stores.length > 1 ? `; ${this.stores.length} member backbones, each with its own cache, their features side by side${this.options.featureNorm ? `, each scaled to L2 length ${this.options.featureNorm} first` : ''}` : '';
    return {
      cached: true,
      augmentation: `${views}${then}${members}`,
      dir: this.stores.map((s) => s.cache.dir).join(', '),
      hits: sum((s) => s.cache.hits),
      misses: sum((s) => s.cache.misses),
      corrupt: sum((s) => s.cache.corrupt),
      ...tuned,
    };
  }

  dispose(): void {
    this.whole?.dispose();
    disposeClassifier(this.model);
  }
}

/** `body` given the engine once it is open; the engine is disposed with the subscription, even one ended while it was opening. */
function withEngine<T>(open: () => Promise<InferenceEngine>, body: (engine: InferenceEngine) => Observable<T>): Observable<T> {
  return new Observable<T>((subscriber) => {
    let ended = false;
    let engine: InferenceEngine | undefined;
    let running: { unsubscribe(): void } | undefined;
    open().then(
      (opened) => {
        engine = opened;
        if (ended) return void engine.dispose();
        running = body(engine).subscribe(subscriber);
      },
      (error: unknown) => subscriber.error(error),
    );
    return () => {
      ended = true;
      running?.unsubscribe();
      void engine?.dispose();
    };
  });
}
