/**
 * One trial of the recipe bench: a head trained with given settings on cached features held in
 * memory, scored on validation images after every epoch. It runs the graph's own stage
 * (`fitStage`: the same Adam, epoch shuffles, class weights, L2 and label smoothing) on the head
 * `createModel` / `createEnsemble` would build, so a setting found here is what the graph runs.
 */
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { from, lastValueFrom, tap, toArray, type OperatorFunction } from 'rxjs';
import { concatFeatures } from '../src/core/features.js';
import type { Batch, Predictions, Sample } from '../src/core/types.js';
import { BASE_OPTIONS } from '../src/graphs/graph.js';
import { disposeModel, type Classifier } from '../src/models/classifier.js';
import { transferHead } from '../src/models/create.js';
import { ensembleHead } from '../src/models/ensemble.js';
import { getModel } from '../src/models/registry.js';
import { addPredictions, emptyTally, summarize, type Tally } from '../src/operators/metrics.js';
import { balancedClassWeights } from '../src/operators/train.js';
import { newRunState } from '../src/stages/callbacks.js';
import type { BatchSource } from '../src/stages/epoch.js';
import { featureBatches } from '../src/stages/features.js';
import { fitStage } from '../src/stages/fit.js';
import { holdOut } from '../src/training/validation.js';

/** The head settings the bench searches; the rest of a run (batch 32, constant schedule, no early stopping) stays the graph's default. */
export interface HeadSettings {
  /** L2 length the features are scaled to (0: raw features, as `--feature-norm 0`). */
  featureNorm: number;
  l2: number;
  lr: number;
  classWeights: 'none' | 'balanced';
  labelSmoothing: number;
}

export type FeatureTable = ReadonlyMap<string, Float32Array>;

/** What trials train on: one model's cached features, and the head its graph puts on them. */
export interface TrialModel {
  name: string;
  classes: number;
  /** The head's input rows for a feature norm (an ensemble scales each member's part before concatenating; a single model's head scales them itself). */
  features(featureNorm: number): FeatureTable;
  head(featureNorm: number, seed: number): LayersModel;
}

/** A single backbone's features under the head `createModel` gives that model (its study head, `featureNorm` inside it). */
export function singleModel(name: string, classes: number, table: FeatureTable): TrialModel {
  const width = table.values().next().value?.length ?? 0;
  const definition = getModel(name);
  // 0 means raw features, as the graph's `--feature-norm 0` does
  return { name, classes, features: () => table, head: (featureNorm, seed) => transferHead(definition, width, { classes, seed, ...(featureNorm ? { featureNorm } : {}) }) };
}

/**
 * The ensemble graph's input: the members' features side by side, each member's part scaled to
 * `featureNorm` first (`concatFeatures`, as the graph does), under its plain softmax head.
 */
export function ensembleModel(classes: number, members: readonly FeatureTable[]): TrialModel {
  const paths = [...members[0]!.keys()].filter((p) => members.every((m) => m.has(p)));
  const width = members.reduce((n, m) => n + (m.values().next().value?.length ?? 0), 0);
  // one norm's table kept at a time: trials of one norm come together, and each table is tens of MB
  let kept: { featureNorm: number; table: FeatureTable } | null = null;
  const features = (featureNorm: number): FeatureTable => {
    if (kept?.featureNorm !== featureNorm) kept = { featureNorm, table: new Map(paths.map((p) => [p, concatFeatures(members.map((m) => m.get(p)!), featureNorm || undefined)])) };
    return kept.table;
  };
  return { name: 'ensemble', classes, features, head: (_, seed) => ensembleHead(width, classes, seed) };
}

/** A validation split of the training part: `fraction` of each class held out, seeded (the graph's `--val-split F --seed S`). */
export interface ValidationSplit {
  seed: number;
  fit: Sample[];
  validation: Sample[];
}

/**
 * K validation splits of `train` (seeds 0…K−1), each holding out `fraction` of every class with
 * the graph's own `holdOut`: split k is the one `--val-split F --seed k` validates on.
 */
export function validationSplits(train: readonly Sample[], count: number, fraction: number): ValidationSplit[] {
  return Array.from({ length: count }, (_, seed) => ({ seed, ...holdOut(train, fraction, seed) }));
}

export interface TrialResult {
  /** Mean per-class accuracy on the validation images after each epoch (index 0: epoch 1). */
  meanPerClass: number[];
  valLoss: number[];
  seconds: number;
}

/**
 * Trains `model`'s head with `settings` for `epochs` epochs on the split's fit images (head and
 * shuffles seeded with the split's seed, as a graph run with that seed is), evaluating the
 * validation images after every epoch; no checkpoints are written.
 */
export async function runTrial(model: TrialModel, split: ValidationSplit, settings: HeadSettings, epochs: number, batch: number = BASE_OPTIONS.batch): Promise<TrialResult> {
  const started = performance.now();
  const table = model.features(settings.featureNorm);
  const head = model.head(settings.featureNorm, split.seed);
  const classifier: Classifier = { name: model.name, inputSize: 0, preprocessing: 'raw', classes: model.classes, backbone: null, head, weights: '' };
  const tallies: Tally[] = [];
  // the evaluation pass's predictions, tallied per epoch for the per-class figure the epoch record lacks
  const source: BatchSource = <T extends Predictions>(samples: readonly Sample[], epoch: number, training: boolean, step: OperatorFunction<Batch, T>) => {
    const batches = from(featureBatches(samples, [table], batch, training ? 'rows' : 'mean')).pipe(step);
    if (training) return batches;
    tallies[epoch - 1] = emptyTally(model.classes);
    return batches.pipe(tap((p) => (tallies[epoch - 1] = addPredictions(tallies[epoch - 1]!, p))));
  };
  try {
    const records = await lastValueFrom(
      fitStage<null>({
        plan: { name: 'train', epochs, lr: settings.lr, input: 'features', augment: false, tuneBackbone: false },
        span: { first: 0, last: epochs },
        run: newRunState(),
        index: 0,
        ctx: { model: classifier, source },
        fit: split.fit,
        evaluated: split.validation,
        seed: split.seed,
        lrSchedule: BASE_OPTIONS.lrSchedule,
        warmup: BASE_OPTIONS.warmup,
        train: { l2: settings.l2, labelSmoothing: settings.labelSmoothing, ...(settings.classWeights === 'balanced' ? { classWeights: balancedClassWeights(split.fit.map((s) => s.label), model.classes) } : {}) },
        out: null,
        state: () => null,
        resumed: null,
        onEpoch: () => undefined,
        onCheckpointer: () => undefined,
        onEnd: () => undefined,
      }).pipe(toArray()),
    );
    return { meanPerClass: tallies.map((t) => summarize(t).meanPerClass), valLoss: records.map((r) => r.valLoss), seconds: (performance.now() - started) / 1000 };
  } finally {
    disposeModel(head);
  }
}
