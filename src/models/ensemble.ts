import { denseHead, disposeClassifier, type Classifier } from './classifier.js';
import { createModel } from './create.js';
import { getVariant } from './registry.js';

export { concatFeatures } from '../core/features.js';

/** The model name the `ensemble` graph runs: its members come from `--members`. */
export const ENSEMBLE_MODEL = 'ensemble';

/**
 * Several frozen backbones and one head on their concatenated features. It has no backbone of its
 * own (`backbone: null`): each member is a classifier whose backbone computes (and caches) its
 * part of the features; the members' own heads are never trained or used.
 */
export interface EnsembleClassifier extends Classifier {
  readonly members: readonly Classifier[];
  /** Each member's features are scaled to this L2 length before concatenation (raw when absent). */
  readonly featureNorm?: number;
}

export const isEnsemble = (model: Classifier): model is EnsembleClassifier => model.members !== undefined;

export interface EnsembleOptions {
  members: readonly string[];
  classes: number;
  weights?: string;
  weightsDir?: string;
  inputSize?: number;
  featureNorm?: number;
  seed: number;
}

/**
 * The ensemble's head on `width` concatenated features: a plain softmax layer (each member's
 * features are scaled before they are put side by side, not in the head). Exported so that the
 * recipe bench trains the head the graph trains.
 */
export const ensembleHead = (width: number, classes: number, seed: number) => denseHead(width, classes, { seed });

/**
 * The members (each with its own weights, preprocessing and feature cache) at one input size — the
 * full pass decodes every image once for all of them — `inputSize`, else the largest of the
 * members' own (MobileNets 224, SqueezeNet 227); then a softmax head on their features side by side.
 */
export async function createEnsemble(options: EnsembleOptions): Promise<EnsembleClassifier> {
  if (options.members.length < 2) throw new Error(`the ensemble graph needs at least two --members (comma-separated), got ${options.members.length}`);
  const repeated = options.members.find((m, i) => options.members.indexOf(m) !== i);
  if (repeated) throw new Error(`--members names ${repeated} twice`);
  const variants = options.members.map((name) => getVariant(name));
  const inputSize = options.inputSize ?? Math.max(...variants.map((v) => v.inputSize));
  const members: Classifier[] = [];
  try {
    for (const name of options.members) {
      const member = await createModel(name, { classes: options.classes, inputSize, seed: options.seed, ...(options.weights ? { weights: options.weights } : {}), ...(options.weightsDir ? { weightsDir: options.weightsDir } : {}) });
      members.push(member);
      if (!member.backbone) throw new Error(`${name} trains from scratch and has no frozen backbone to take features from; the ensemble needs transfer-learning members`);
    }
    const width = members.reduce((sum, m) => sum + (m.backbone!.outputs[0]!.shape[1] as number), 0);
    return {
      name: `ensemble(${members.map((m) => m.name).join('+')})`,
      inputSize,
      preprocessing: members[0]!.preprocessing,
      classes: options.classes,
      backbone: null,
      head: ensembleHead(width, options.classes, options.seed),
      weights: members.map((m) => `${m.name}: ${m.weights}`).join('; '),
      members,
      ...(options.featureNorm !== undefined ? { featureNorm: options.featureNorm } : {}),
    };
  } catch (error) {
    members.forEach(disposeClassifier);
    throw error;
  }
}
