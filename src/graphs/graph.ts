import { availableParallelism } from 'node:os';
import { Registry } from '../core/registry.js';
import type { Decoder, ResizeMode } from '../operators/decode.js';
import type { LrSchedule } from '../training/schedule.js';

/** Everything a run can be told; the CLI's flags map one to one onto it. */
export interface ExperimentOptions {
  /** Folder-per-class dataset (Caltech-256, Caltech-101 or any ImageFolder tree). */
  data: string;
  /** External test folder; with it, all of `data` trains. */
  testData?: string;
  /** `ratio:F`, `per-class:N[:M]` (ignored with `testData`). */
  protocol: string;
  exclude: string[];
  epochs: number;
  batch: number;
  /** Square input side in pixels; the model's default when absent. */
  imageSize?: number;
  lr: number;
  seed: number;
  /** Use at most this many images (balanced over classes), for quick runs. */
  limit?: number;
  resize: ResizeMode;
  augment: boolean;
  /** `imagenet`, `none`, a weights file, a tfjs model folder or a URL; the model's own default when absent. */
  weights?: string;
  /** A folder searched first for each model's known ImageNet file (e.g. a folder of Keras downloads). */
  weightsDir?: string;
  alpha?: number;
  /** Batches decoded ahead of the compute (the prefetch bound, in batches). */
  prefetch: number;
  /** Images decoded at once. */
  concurrency: number;
  /** `auto` (the fast decoder where it applies, sharp for every other file), `fast` or `sharp`. */
  decoder: Decoder;
  /** Train a frozen backbone's head on cached features (computed once, kept on disk). */
  cache: boolean;
  /** Cached feature views per image: 1 (the image) or 2 (and its mirror; evaluation averages them). */
  views: 1 | 2;
  /** Unfreeze the backbone's last N blocks (bypasses the feature cache). */
  fineTune?: number;
  /** `balanced` weighs every class equally in the loss (what mean per-class accuracy rewards). */
  classWeights: 'none' | 'balanced';
  /** L2 penalty on the head's kernels. */
  l2: number;
  /** Scale the backbone's features to this L2 length first thing in the head (raw features when absent). */
  featureNorm?: number;
  /** Label smoothing ε of the training loss, in [0, 1). */
  labelSmoothing: number;
  /** How the learning rate moves over the epochs; `warmup` epochs ramp it up first. */
  lrSchedule: LrSchedule;
  warmup: number;
  /** Stop when the validation loss has not improved for this many epochs, and restore the best epoch's weights. */
  patience?: number;
  /**
   * Fraction of each class's training images held out to validate every epoch (0: the per-epoch
   * figures are on the test images, as in the study). With `patience` it defaults to 0.1, so that
   * early stopping never looks at the test images.
   */
  valSplit: number;
  /**
   * Worker threads computing inference on the WebAssembly backend (the frozen backbone's features,
   * the full pass), each with its own copy of the model and a slice of every batch. This thread then
   * only decodes and batches, so decoding overlaps the compute. 0: compute on this thread. Other
   * backends compute on this thread (they have threads of their own). Default: the machine's
   * cores, at most 4.
   */
  workers: number;
  /** Continue from the checkpoint in `out` instead of starting anew. */
  resume?: boolean;
  /** Where report.json, report.md, manifest.json, the checkpoint and the trained model go. */
  out: string;
}

/** An architecture's experiment: which registered model it runs and its defaults. */
export interface GraphDefinition {
  name: string;
  model: string;
  description: string;
  defaults: Partial<ExperimentOptions>;
}

export const BASE_OPTIONS: Omit<ExperimentOptions, 'data' | 'out'> = {
  protocol: 'ratio:0.8',
  exclude: ['257.clutter', 'BACKGROUND_Google'],
  epochs: 5,
  batch: 32,
  lr: 1e-3,
  seed: 0,
  resize: 'squash',
  augment: true,
  prefetch: 4,
  concurrency: 4,
  decoder: 'auto',
  cache: true,
  views: 1,
  classWeights: 'none',
  l2: 0,
  labelSmoothing: 0,
  lrSchedule: 'constant',
  warmup: 0,
  valSplit: 0,
  // each worker holds a copy of the model: VGG-19's is 0.57 GB
  workers: Math.min(availableParallelism(), 4),
};

const graphs = new Registry<GraphDefinition>('graph');

export const registerGraph = (definition: GraphDefinition) => graphs.register(definition);
export const listGraphs = () => graphs.list();
export const getGraph = (name: string) => graphs.get(name);
