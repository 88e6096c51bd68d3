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

const models = new Registry<ModelDefinition>('model');

export const registerModel = (definition: ModelDefinition) => models.register(definition);
export const listModels = () => models.list();
export const getModel = (name: string) => models.get(name);
