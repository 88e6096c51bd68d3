import { Registry } from '../core/registry.js';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { HeadOptions } from './classifier.js';
import type { StoredLayers } from './load-weights.js';
import type { Preprocessing } from './preprocessing.js';
import type { ClassifierActivation, Pooling } from './top.js';
import type { KnownWeights } from './weights.js';

/** Keras-applications arguments of a network builder. */
export interface BuildOptions {
  inputSize: number;
  /** Width multiplier (MobileNets); ignored by the others. */
  alpha: number;
  includeTop: boolean;
  classes: number;
  pooling?: Pooling;
  classifierActivation?: ClassifierActivation;
  /** Which weights will be loaded (EfficientNet adds an input rescaling for ImageNet weights, as Keras 3 does). */
  weights?: string;
}

export interface CreateModelOptions {
  classes: number;
  /** `imagenet` (the known source), `none` (random initialisation), a weights file, a tfjs model folder or a URL. */
  weights?: string;
  /** A folder searched first for the known ImageNet file (by its published name), before the embedded copy, the cache and a download. */
  weightsDir?: string;
  inputSize?: number;
  /** Width multiplier of the MobileNets. */
  alpha?: number;
  /** Seeds the initial weights of what is trained. */
  seed?: number;
  /** Unfreeze the backbone's last N blocks (batch-norm stays in inference mode, as Keras advises). */
  fineTune?: number;
  /** Scale the backbone's features to this L2 length in the head (see {@link HeadOptions.featureNorm}); off when absent. */
  featureNorm?: number;
}

/** How the study trains an architecture. */
export type TrainingPlan =
  /** Frozen ImageNet backbone, global average pooling, then this dense head. */
  | { kind: 'transfer'; head: HeadOptions }
  /** The whole network, its top (`topLayers`) rebuilt for the classes. */
  | { kind: 'scratch'; topLayers: string[] };

/** One architecture: one file in src/models plus one `registerModel`. */
export interface ModelDefinition {
  name: string;
  description: string;
  defaultInputSize: number;
  minInputSize: number;
  preprocessing: Preprocessing;
  /** Width multipliers with published weights; the first is rxcnn's default. */
  alphas?: number[];
  training: TrainingPlan;
  /** The Keras-applications network, with Keras' layer names. */
  build(options: BuildOptions): LayersModel;
  /** Known ImageNet weights of the network without its top, best first. */
  imagenet(options: { alpha: number; inputSize: number }): KnownWeights[];
  /** Names of the layers that end a block of the backbone (its weighted part), for `--fine-tune N`: the last N blocks train. */
  blockEnds: RegExp;
  /** The width multiplier a weights file was made for, from its tensor shapes (MobileNets). */
  inferAlpha?: (stored: StoredLayers, rename: (name: string) => string) => number | undefined;
  /** Maps the layer names of a weights file (all given) to the builder's, for older Keras files. */
  renamer?: (fileLayers: readonly string[]) => (name: string) => string;
}

/**
 * A named pretrained configuration of an architecture, as timm tags them: `mobilenetv2_050` is
 * MobileNetV2 at width 0.5. It carries what differs between variants: the width, and through the
 * architecture at that width its input size, preprocessing and known ImageNet weights.
 */
export interface ModelVariant {
  name: string;
  definition: ModelDefinition;
  /** The width multiplier (MobileNets); absent for architectures without one. */
  alpha?: number;
  inputSize: number;
  preprocessing: Preprocessing;
  /** The published ImageNet weights of this variant (URL and hash), best first. */
  weights: KnownWeights[];
  /** True for the architecture's own name, which stands for its default variant (`mobilenetv2` → `mobilenetv2_050`). */
  alias: boolean;
}

/** timm's width tag: 0.5 → `050`, 0.35 → `035`, 1.0 → `100`, 1.4 → `140`. */
export const variantName = (architecture: string, alpha: number) => `${architecture}_${String(Math.round(alpha * 100)).padStart(3, '0')}`;

const models = new Registry<ModelDefinition>('model');
const variants = new Map<string, ModelVariant>();

function variantOf(definition: ModelDefinition, alpha: number | undefined, alias: boolean): ModelVariant {
  const inputSize = definition.defaultInputSize;
  return {
    name: alpha === undefined || alias ? definition.name : variantName(definition.name, alpha),
    definition,
    ...(alpha === undefined ? {} : { alpha }),
    inputSize,
    preprocessing: definition.preprocessing,
    weights: definition.imagenet({ alpha: alpha ?? 1, inputSize }),
    alias: alias && alpha !== undefined,
  };
}

/**
 * Registers an architecture and its variants: one per width with published weights
 * (`mobilenetv2_050`, `mobilenetv2_035`, …), and the architecture's name for the first of them.
 */
export function registerModel(definition: ModelDefinition): void {
  const named = [variantOf(definition, definition.alphas?.[0], true), ...(definition.alphas ?? []).map((alpha) => variantOf(definition, alpha, false))];
  const taken = named.find((v) => variants.has(v.name));
  if (taken) throw new Error(`model '${taken.name}' is already registered`);
  models.register(definition);
  for (const variant of named) variants.set(variant.name, variant);
}

export const listModels = () => models.list();
export const getModel = (name: string) => getVariant(name).definition;

/** Every registered variant name, aliases included, in natural order. */
export const listVariants = (): ModelVariant[] => [...variants.values()].sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));

/** An architecture's name or a variant's tag (`mobilenetv2`, `mobilenetv2_035`), with a one-line error listing the known names. */
export function getVariant(name: string): ModelVariant {
  const variant = variants.get(name);
  if (!variant) throw new Error(`unknown model '${name}'; known models: ${listVariants().map((v) => v.name).join(', ')}`);
  return variant;
}
