import type { ExperimentOptions, Recipe } from './graph.js';

type Settings = Partial<Omit<ExperimentOptions, 'data' | 'out' | 'fineTune' | 'fineTuneEpochs' | 'fineTuneLr'>>;

/**
 * The head setting chosen on validation splits of Caltech-101's training images (never its test
 * images; README, Accuracy): features scaled to L2 length 10, every class weighing the same in the
 * loss, L2 1e-4 on the head's kernels, Adam at 1e-3 for 30 epochs on cached features. It was chosen
 * with MobileNetV2-0.5, MobileNet v1-0.25, SqueezeNet 1.1 and MobileNetV2-0.35, the models with
 * offline weights; Inception-ResNet-v2 and EfficientNet, whose weights cannot be fetched here, take
 * it as the recipe of their kind (a frozen ImageNet backbone under a trained head), unvalidated.
 */
export const HAND_CHOSEN_HEAD = { epochs: 30, lr: 1e-3, classWeights: 'balanced', l2: 1e-4, featureNorm: 10 } as const satisfies Settings;
export const VALIDATED_HEAD = HAND_CHOSEN_HEAD;

/**
 * A frozen backbone's features computed once (cached on disk), then every epoch trains the head on
 * them: [features → train → metrics] then [features → predict → metrics].
 */
export function headOnCachedFeatures(settings: Settings): Recipe {
  return { kind: 'head on cached features', defaults: { ...settings, cache: true } };
}

/**
 * The whole network trained on decoded images every epoch:
 * [decode → augment → batch → prefetch → train → metrics] then [decode → batch → prefetch → predict → metrics].
 */
export function trainEndToEnd(settings: Settings): Recipe {
  return { kind: 'train end to end', defaults: settings };
}

/**
 * The Keras transfer-learning recipe in two stages: the head on cached features of the frozen
 * backbone, then the backbone's top `blocks` blocks and the head together on augmented images at a
 * lower learning rate.
 */
export function headThenFineTune(stages: { head: Settings & { epochs: number; lr: number }; fineTune: { blocks: number; epochs: number; lr: number } }): Recipe {
  return { kind: 'head, then fine-tune', defaults: { ...stages.head, cache: true, fineTune: stages.fineTune.blocks, fineTuneEpochs: stages.fineTune.epochs, fineTuneLr: stages.fineTune.lr } };
}
