import type { EpochRecord, Report, TrainingReport } from '../report.js';
import type { Tta } from '../stages/full-pass.js';

/**
 * A run's report as a comparison reads it: reports written before runs recorded their training
 * (`training`, per-epoch `lr`), saved their model (`size.bytes` on disk) or named their test-time
 * augmentation (`metrics.tta`) still compare.
 */
export type ComparedReport = Omit<Report, 'training' | 'history' | 'size' | 'metrics'> & {
  metrics: Omit<Report['metrics'], 'tta'> & Partial<Pick<Report['metrics'], 'tta'>>;
  training?: Pick<TrainingReport, 'epochsPlanned' | 'epochsRun' | 'bestEpoch' | 'stoppedEarly'> & Partial<TrainingReport>;
  history: Array<Omit<EpochRecord, 'lr'> & { lr?: number }>;
  size: Report['size'] & { estimated?: boolean };
};

/** One row of the comparison table: one model's run. Accuracies are fractions 0…1. */
export interface ModelRow {
  graph: string;
  model: string;
  weights: string;
  backend: string;
  params: number;
  size: {
    bytes: number;
    megabytes: number;
    /** True when the trained model was not saved and its size is parameters × 4 bytes (float32). */
    estimated: boolean;
  };
  top1: number;
  top5: number;
  meanPerClass: number;
  /** The study's "average accuracy": top-1 over train and test images together. Not a test figure. */
  studyAverage: number;
  speed: { batch: number; images: number; fullPassSeconds: number; imagesPerSecond: number };
  epochs: {
    run: number;
    planned: number | null;
    best: number;
    /** Where `best` comes from: the run's own training record, or the epoch with the lowest validation loss. */
    bestBy: 'training' | 'lowest validation loss';
    stoppedEarly: boolean | null;
    /** What the per-epoch validation figures (and so the best epoch) were measured on. */
    validation: string;
  };
}

/** The ensemble row: the members' test probabilities averaged per image (see `ensemble.ts`). */
export interface EnsembleRow {
  graph: 'ensemble';
  model: string;
  /** Member graphs, in table order. */
  members: string[];
  /** The members' test-time augmentation (their kept probabilities are those of their headline). */
  tta: Tta;
  /** Test images averaged (those every member predicted). */
  images: number;
  /** The members' together. */
  params: number;
  size: ModelRow['size'];
  top1: number;
  top5: number;
  meanPerClass: number;
  /** The members' full passes one after another: summed seconds, the same images. */
  speed: ModelRow['speed'];
  backend: string;
  /** The averaged probabilities, relative to the comparison folder. */
  predictions: string;
}

/** An off-diagonal cell of a confusion matrix: test images of `actual` predicted as `predicted`. */
export interface ConfusedPair {
  actual: string;
  predicted: string;
  count: number;
  /** `count` over the test images of `actual`. */
  shareOfActual: number;
}

/** A plot written as SVG and PNG, paths relative to the comparison folder. */
export interface PlotFiles {
  title: string;
  svg: string;
  png: string;
}

/** What the comparison shows of one model besides its table row. */
export interface ModelDetails {
  graph: string;
  /** The run's folder and files, relative to the comparison folder. */
  dir: string;
  report: string;
  csv: string;
  history: ComparedReport['history'];
  bestEpoch: number;
  confusedPairs: ConfusedPair[];
  plots: { history: PlotFiles; confusion: PlotFiles };
}

/** The plain-language reading of the table. Model lists hold graph names; ties name every model. */
export interface Summary {
  mostAccurate: string[];
  fastest: string[];
  smallest: string[];
  /** Models no other model beats on both accuracy and speed, fastest first. */
  frontier: string[];
  text: string;
}

/** `compare.json`: the single source that `compare.md` and `index.html` are rendered from. */
export interface Comparison {
  createdAt: string;
  seconds: number;
  /** The accuracy the summary ranks by. */
  rankedBy: 'meanPerClass';
  split: {
    manifest: string;
    protocol: string;
    seed: number;
    root: string;
    testRoot: string;
    classes: number;
    train: number;
    test: number;
  };
  /** The options given to every model (each graph's own defaults fill the rest). */
  options: Record<string, unknown>;
  models: ModelRow[];
  /** The members' averaged test probabilities as one more row, or why there is none (absent from compare.json written before ensembles). */
  ensemble?: EnsembleRow | { members: string[]; skipped: string };
  summary: Summary;
  details: ModelDetails[];
  plots: { accuracyVsSpeed: PlotFiles };
}
