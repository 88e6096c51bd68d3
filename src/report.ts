import { describeEngine, type EngineUsed } from './engines/engine.js';
import type { Skip, Split } from './core/types.js';
import type { ExperimentOptions } from './graphs/graph.js';
import { countParams, type Classifier } from './models/classifier.js';
import type { OperatorStats } from './operators/measure.js';
import type { Metrics } from './operators/metrics.js';
import { percent } from './core/format.js';
import type { Tta } from './stages/full-pass.js';

export interface EpochRecord {
  epoch: number;
  loss: number;
  top1: number;
  valLoss: number;
  valTop1: number;
  /** Mean per-class accuracy on the validation images (Caltech's headline measure; absent in histories from before it was recorded). */
  valMeanPerClass?: number;
  /** The learning rate the epoch trained with. */
  lr: number;
  seconds: number;
}

/** How training went: how many epochs ran, which was best, and what the per-epoch "val" figures are. */
export interface TrainingReport {
  epochsPlanned: number;
  epochsRun: number;
  /** The epoch with the lowest validation loss. */
  bestEpoch: number;
  stoppedEarly: boolean;
  /** True when the final weights are the best epoch's (early stopping), false when they are the last epoch's. */
  restoredBest: boolean;
  /** What `valLoss`/`valTop1` were measured on: a held-out part of the training images, or the test images. */
  validation: 'held-out training images' | 'test images';
  validationImages: number;
  lrSchedule: string;
  warmup: number;
  /** The last stage's (what `stoppedEarly` and `bestEpoch` are of). */
  patience: number | null;
  /** Epochs that came from a checkpoint (a resumed run). */
  resumedAfterEpoch: number | null;
  /** The run's training stages in order (one, or the head then fine-tuning); epochs are numbered across them. */
  stages: StageReport[];
}

/** One training stage as it ran. */
export interface StageReport {
  name: string;
  /** Planned. */
  epochs: number;
  lr: number;
  input: 'features' | 'images';
  /** Its early-stopping patience (null: none, every epoch ran). */
  patience: number | null;
  /** Epochs it ran (fewer when stopped early), and their seconds (train and validation, from the history: a resumed run's earlier epochs included). */
  epochsRun: number;
  seconds: number;
  /** A stage that tuned the backbone on images: where the network was cut, and which engine ran the frozen part below (null: never opened, a run resumed after the stage's last epoch). */
  frozenPrefix?: { cut: string; engine: string | null };
}

/** How the head was fed: cached backbone features (and what that means for augmentation) or images. */
export interface FeatureReport {
  cached: boolean;
  augmentation: string;
  dir: string | null;
  hits: number;
  misses: number;
  corrupt: number;
  /** With `--fine-tune N`: how many of the backbone's last blocks trained. */
  fineTunedBlocks?: number;
}

/** Everything a run measured; written as `report.json` (accuracies are fractions 0…1). */
export interface Report {
  graph: string;
  model: string;
  weights: string;
  backend: string;
  protocol: string;
  seed: number;
  dataset: {
    root: string;
    testRoot: string;
    classes: number;
    classNames: string[];
    train: number;
    test: number;
    skipped: number;
    skippedByReason: Record<string, number>;
    skippedFiles: Skip[];
    shortClasses: Array<{ id: string; images: number }>;
  };
  /** The test figures (with flip TTA, those of each image averaged with its mirror; `plain` then holds the figures without). */
  metrics: {
    top1: number;
    top5: number;
    meanPerClass: number;
    loss: number;
    /** Test-time augmentation of these figures: `none`, or `flip` (each image's probabilities averaged with its mirror's). */
    tta: Tta;
    /** With flip TTA: the same test images' figures from the plain images alone. */
    plain?: { top1: number; top5: number; meanPerClass: number; loss: number };
    /** The study's "average accuracy": top-1 over train and test images together. Not a test figure. */
    studyAverage: number;
    perClass: Record<string, number | null>;
    /** rows: true class, columns: predicted class, in `dataset.classNames` order. */
    confusion: number[][];
  };
  history: EpochRecord[];
  training: TrainingReport;
  speed: {
    batch: number;
    images: number;
    /** Images per second of the full pass: decode, preprocessing and inference together. */
    imagesPerSecond: number;
    /** Seconds for one inference pass over every image of the dataset (train and test) at `batch`. */
    fullPassSeconds: number;
    /** The inference engine that computed it: `onnxruntime`, `tfjs-workers` or `tfjs`; where (execution provider or tfjs backend) and on how many threads. */
    engine: EngineUsed;
    /** With flip TTA: seconds of the mirrored pass over the test images, which ran after the timed pass and is not in `fullPassSeconds`. */
    ttaSeconds?: number;
  };
  /** Parameters, and the trained model's size on disk (`model/`: model.json + weights.bin). */
  size: { params: number; bytes: number };
  features: FeatureReport;
  operators: Record<string, OperatorStats>;
  options: Record<string, unknown>;
  startedAt: string;
  seconds: number;
}

export interface ReportInput {
  graph: string;
  model: Classifier;
  data: Split;
  history: EpochRecord[];
  training: TrainingReport;
  /** Bytes of the saved trained model. */
  savedBytes: number;
  /** The final inference pass: metrics of the test images, of all images, and its wall time. */
  pass: { test: Metrics; all: Metrics; seconds: number; engine: EngineUsed; tta?: { test: Metrics; seconds: number } };
  /** The tfjs backend the run trained on. */
  backend: string;
  skipped: Skip[];
  operators: Record<string, OperatorStats>;
  options: ExperimentOptions;
  startedAt: Date;
  speedBatch: number;
  features: FeatureReport;
}

export function assembleReport({ graph, model, data, history, training, savedBytes, pass, backend, skipped, operators, options, startedAt, speedBatch, features }: ReportInput): Report {
  const classes = data.classes.length;
  const params = countParams(model);
  const headline = pass.tta?.test ?? pass.test;
  const figures = (m: Metrics) => ({ top1: m.top1, top5: m.top5, meanPerClass: m.meanPerClass, loss: m.loss });
  return {
    graph,
    model: model.name,
    weights: model.weights,
    backend,
    protocol: data.protocol,
    seed: data.seed,
    dataset: {
      root: data.roots.train,
      testRoot: data.roots.test,
      classes,
      classNames: data.classes.map((c) => c.name),
      train: data.train.length,
      test: data.test.length,
      skipped: skipped.length,
      skippedByReason: countByReason(skipped),
      skippedFiles: skipped,
      shortClasses: data.shortClasses,
    },
    metrics: {
      ...figures(headline),
      tta: pass.tta ? 'flip' : 'none',
      ...(pass.tta ? { plain: figures(pass.test) } : {}),
      // the study's figure is defined on one plain pass over every image, TTA or not
      studyAverage: pass.all.top1,
      perClass: Object.fromEntries(data.classes.map((c, i) => [c.name, Number.isNaN(headline.perClass[i]!) ? null : headline.perClass[i]!])),
      confusion: Array.from({ length: classes }, (_, r) => Array.from(headline.confusion.subarray(r * classes, (r + 1) * classes))),
    },
    history,
    training,
    speed: { batch: speedBatch, images: pass.all.count, imagesPerSecond: pass.all.count / pass.seconds, fullPassSeconds: pass.seconds, engine: pass.engine, ...(pass.tta ? { ttaSeconds: pass.tta.seconds } : {}) },
    size: { params, bytes: savedBytes },
    features,
    operators,
    options: { ...options },
    startedAt: startedAt.toISOString(),
    seconds: (Date.now() - startedAt.getTime()) / 1000,
  };
}

/** What flip TTA changed, and that the speed figure is of the plain pass alone. */
export function ttaLine({ metrics: m, speed: s }: Pick<Report, 'metrics' | 'speed'>): string {
  const p = m.plain!;
  return `Test figures with flip TTA (each test image's probabilities averaged with its mirror's); without it (plain images): top-1 ${percent(p.top1)}, top-5 ${percent(p.top5)}, mean per-class ${percent(p.meanPerClass)}. The full pass timed is the plain one; the mirrored pass over the test images took ${num(s.ttaSeconds ?? NaN, 1)} s more, not in the speed figure.`;
}

/** `fine-tune (3 epochs at lr 0.0001, on images; the frozen prefix up to block_15_add on onnxruntime (cpu, 2 threads); 3 run in 412.3 s, 137.4 s per epoch)`. */
export function describeStage(s: StageReport): string {
  const prefix = s.frozenPrefix ? `; the frozen prefix up to ${s.frozenPrefix.cut}${s.frozenPrefix.engine ? ` on ${s.frozenPrefix.engine}` : ''}` : '';
  const time = s.epochsRun > 0 ? `; ${s.epochsRun} run in ${num(s.seconds, 1)} s, ${num(s.seconds / s.epochsRun, 1)} s per epoch` : '';
  return `${s.name} (${s.epochs} epochs at lr ${s.lr}, on ${s.input === 'features' ? 'cached features' : 'images'}${prefix}${time})`;
}

function trainingLine(t: TrainingReport): string {
  const stop = t.stoppedEarly ? `stopped early after ${t.epochsRun} of ${t.epochsPlanned} epochs (patience ${t.patience})` : `${t.epochsRun} epochs`;
  const weights = t.restoredBest ? `the best epoch's weights (${t.bestEpoch}) were restored` : `best epoch ${t.bestEpoch}, the last epoch's weights kept`;
  const resumed = t.resumedAfterEpoch === null ? '' : `; resumed after epoch ${t.resumedAfterEpoch}`;
  const stages = t.stages.length > 1 || t.stages[0]?.frozenPrefix ? `Stages: ${t.stages.map(describeStage).join(', then ')}; ` : '';
  return `${stages}${stop}; ${weights}; "val" is ${t.validationImages} ${t.validation}; learning rate ${t.lrSchedule}${t.warmup ? ` after ${t.warmup} warm-up epoch(s)` : ''}${resumed}.`;
}

export function countByReason(skips: readonly Skip[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { reason } of skips) counts[reason] = (counts[reason] ?? 0) + 1;
  return counts;
}

const num = (x: number, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');

export function renderMarkdown(report: Report): string {
  const { metrics: m, dataset: d, speed: s } = report;
  const lines = [
    `# ${report.graph}: ${report.model}`,
    '',
    `Backend ${report.backend}, protocol ${report.protocol}, seed ${report.seed}, weights ${report.weights}.`,
    `Dataset ${d.root}: ${d.classes} classes, ${d.train} train / ${d.test} test images, ${d.skipped} files skipped.`,
    '',
    '| test top-1 | test top-5 | mean per-class | test loss | params | size (MB) | full pass (s) | images/s |',
    '|---|---|---|---|---|---|---|---|',
    `| ${percent(m.top1)} | ${percent(m.top5)} | ${percent(m.meanPerClass)} | ${num(m.loss, 3)} | ${report.size.params.toLocaleString('en-US')} | ${num(report.size.bytes / 1e6)} | ${num(s.fullPassSeconds, 1)} | ${num(s.imagesPerSecond, 1)} |`,
    '',
    ...(m.plain ? [ttaLine(report), ''] : []),
    `The study's "average accuracy" (train and test images together, not a test figure): ${percent(m.studyAverage)}.`,
    `Full pass: ${s.images} images at batch ${s.batch}, decode included (decoder ${String(report.options.decoder ?? 'sharp')}), computed by ${describeEngine(s.engine)}.`,
    report.features.cached
      ? `Backbone features cached (${report.features.hits} reused, ${report.features.misses} computed); augmentation ${report.features.augmentation}.`
      : `Augmentation ${report.features.augmentation}.`,
    '',
    '## Training history',
    '',
    trainingLine(report.training),
    '',
    '| epoch | lr | loss | top-1 | val loss | val top-1 | seconds |',
    '|---|---|---|---|---|---|---|',
    ...report.history.map(
      (h) => `| ${h.epoch}${h.epoch === report.training.bestEpoch ? ' (best)' : ''} | ${h.lr.toPrecision(3)} | ${num(h.loss, 3)} | ${percent(h.top1)} | ${num(h.valLoss, 3)} | ${percent(h.valTop1)} | ${num(h.seconds, 1)} |`,
    ),
    '',
    '## Operators',
    '',
    '| operator | items | busy s | items/s (busy) | waiting upstream s | waiting downstream s |',
    '|---|---|---|---|---|---|',
    ...Object.entries(report.operators).map(
      ([name, o]) => `| ${name} | ${o.items} | ${num(o.busySeconds)} | ${num(o.perSecond, 1)} | ${num(o.waitUpstreamSeconds)} | ${num(o.waitDownstreamSeconds)} |`,
    ),
  ];
  if (d.skipped > 0) {
    lines.push('', '## Skipped files', '', ...Object.entries(d.skippedByReason).map(([reason, n]) => `- ${reason}: ${n}`));
  }
  return `${lines.join('\n')}\n`;
}
