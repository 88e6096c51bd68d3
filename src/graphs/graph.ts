import { Registry } from '../core/registry.js';
import { listVariants, variantName, type ModelVariant } from '../models/index.js';
import type { EngineChoice, OnnxProviderChoice, Workers } from '../engines/index.js';
import type { Decoder, ResizeMode } from '../decode/pixels.js';
import type { LrSchedule } from '../training/schedule.js';
import type { Tta } from '../stages/full-pass.js';
import { DEFAULT_DECODE_THREADS } from '../decode/pool.js';

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
  /** Decoding threads, each decoding one image at a time. */
  concurrency: number;
  /** `auto` (the fast decoder where it applies, sharp for every other file), `fast` or `sharp`. */
  decoder: Decoder;
  /** Train a frozen backbone's head on cached features (computed once, kept on disk). */
  cache: boolean;
  /** Cached feature views per image: 1 (the image) or 2 (and its mirror: both train, per-epoch validation averages them; the full pass sees the plain image). */
  views: 1 | 2;
  /** Unfreeze the backbone's last N blocks (bypasses the feature cache), or with `fineTuneEpochs` in a second stage. */
  fineTune?: number;
  /**
   * A second stage: after `epochs` epochs of the head (on cached features when it can), this many
   * epochs fine-tuning the backbone's last `fineTune` blocks with the head, on augmented images.
   */
  fineTuneEpochs?: number;
  /** The second stage's learning rate (default: a tenth of `lr`). */
  fineTuneLr?: number;
  /** The second stage's early-stopping patience (default: `patience`), so the head's stage can run its validated epochs while fine-tuning stops when it overfits. */
  fineTunePatience?: number;
  /** `balanced` weighs every class equally in the loss (what mean per-class accuracy rewards). */
  classWeights: 'none' | 'balanced';
  /** L2 penalty on the head's kernels. */
  l2: number;
  /** Scale the backbone's features to this L2 length first thing in the head (raw features when absent or 0). */
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
   * backends compute on this thread (they have threads of their own). `auto` (the default) stays
   * `auto` in saved options and is resolved where the run runs: the machine's cores, at most 4.
   */
  workers: Workers;
  /** Which runtime computes inference (features, the full pass); training is always tfjs. */
  engine: EngineChoice;
  /** ONNX Runtime's execution provider (`auto`: CUDA → DirectML/CoreML → CPU, the first that loads). */
  provider: OnnxProviderChoice;
  /** The `ensemble` graph's members: model names whose frozen backbones' features, side by side, feed one head. */
  members?: string[];
  /** Test-time augmentation of the final pass: `flip` averages each test image's probabilities with its mirror's (the plain figures are reported too). */
  tta: Tta;
  /** Continue from the checkpoint in `out` instead of starting anew. */
  resume?: boolean;
  /** Where report.json, report.md, manifest.json, the checkpoint and the trained model go. */
  out: string;
}

/** What an experiment is: its kind (which stages) and the options it sets; flags override them. */
export interface Recipe {
  kind: 'head on cached features' | 'train end to end' | 'head, then fine-tune';
  defaults: Partial<ExperimentOptions>;
}

/** An architecture's experiment: which registered model it runs, and its recipe (see `./recipes.ts`). */
export interface GraphDefinition {
  name: string;
  model: string;
  description: string;
  experiment: Recipe;
  /** Variants (by tag, `mobilenetv2_035`) whose own recipe differs from the architecture's. */
  variants?: Readonly<Record<string, Recipe>>;
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
  concurrency: DEFAULT_DECODE_THREADS,
  decoder: 'auto',
  cache: true,
  views: 1,
  classWeights: 'none',
  l2: 0,
  labelSmoothing: 0,
  lrSchedule: 'constant',
  warmup: 0,
  valSplit: 0,
  workers: 'auto',
  engine: 'auto',
  provider: 'auto',
  tta: 'none',
};

const graphs = new Registry<GraphDefinition>('graph');

export const registerGraph = (definition: GraphDefinition) => graphs.register(definition);

/** A model variant's graph: its architecture's graph, run on the variant (`mobilenetv2_035`: the mobilenetv2 graph at alpha 0.35). */
function variantGraph(variant: ModelVariant): GraphDefinition | undefined {
  const architecture = graphs.find(variant.definition.name);
  if (!architecture || variant.name === architecture.name || variant.alias) return undefined;
  const { variants, ...graph } = architecture;
  return { ...graph, name: variant.name, model: variant.name, description: `the ${architecture.name} graph on ${variant.name} (alpha ${variant.alpha})`, experiment: variants?.[variant.name] ?? architecture.experiment };
}

/** Every graph: those registered, and one per model variant whose architecture has a graph. */
export const listGraphs = (): GraphDefinition[] =>
  [...graphs.list(), ...listVariants().flatMap((v) => variantGraph(v) ?? [])].sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));

/**
 * The recipe a run of `graph` takes: with `--alpha` on an architecture's graph
 * (`mobilenetv2 --alpha 0.35`), the recipe of that width's variant when it has its own.
 */
export function recipeOf(graph: GraphDefinition, alpha?: number): Recipe {
  return (alpha !== undefined ? graph.variants?.[variantName(graph.model, alpha)] : undefined) ?? graph.experiment;
}

export function getGraph(name: string): GraphDefinition {
  const graph = graphs.find(name) ?? listVariants().flatMap((v) => (v.name === name ? (variantGraph(v) ?? []) : []))[0];
  if (!graph) throw new Error(`unknown graph '${name}'; known graphs: ${listGraphs().map((g) => g.name).join(', ')}`);
  return graph;
}
