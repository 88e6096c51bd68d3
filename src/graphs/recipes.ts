import type { ExperimentOptions, Recipe } from './graph.js';

type Settings = Partial<Omit<ExperimentOptions, 'data' | 'out' | 'fineTune' | 'fineTuneEpochs' | 'fineTuneLr' | 'fineTunePatience'>>;

/** What the recipe bench chooses for a head on cached features; the rest of a run stays the defaults (batch 32, constant learning rate, no early stopping). */
export type HeadRecipe = Required<Pick<Settings, 'epochs' | 'lr' | 'l2' | 'featureNorm' | 'classWeights'>>;

/**
 * Each model's head recipe, chosen by `npm run bench -- recipes` (run on 2026-12-02; its table is
 * in the README, Accuracy → Recipes): of the settings it tried, the one with the best mean
 * per-class accuracy on held-out training images, averaged over 3 validation splits (20% of each
 * class of the training part of Caltech-101's ratio:0.8, seed 0 split; never its test images).
 * These are the bench's output, copied here: re-run it and copy its winners to change them. Most
 * gains over the hand-chosen recipe (L2 length 10, L2 1e-4, lr 1e-3, 30 epochs, balanced) are
 * within the spread over the splits; the bench's table says by how much.
 */
export const HEAD_RECIPES = {
  // 90.03 ± 0.34 on validation (hand-chosen recipe 89.38 ± 0.23)
  mobilenetv2_050: { epochs: 20, lr: 1e-3, l2: 1e-3, featureNorm: 5, classWeights: 'balanced' },
  // 88.09 ± 1.01: the hand-chosen recipe won
  mobilenetv2_035: { epochs: 30, lr: 1e-3, l2: 1e-4, featureNorm: 10, classWeights: 'balanced' },
  // 86.90 ± 0.88 (86.57 ± 1.07)
  squeezenet: { epochs: 20, lr: 3e-3, l2: 1e-4, featureNorm: 5, classWeights: 'balanced' },
  // 85.34 ± 0.34 (84.32 ± 0.56)
  mobilenetv1_025: { epochs: 30, lr: 1e-3, l2: 1e-4, featureNorm: 5, classWeights: 'balanced' },
  /**
   * For a frozen ImageNet backbone the bench could not search (no offline weights here:
   * Inception-ResNet-v2, EfficientNet): the setting with the best mean over the four models above
   * (the bench's "best single setting" line: 87.38, each model within 0.7 points of its own winner),
   * the recipe of their kind.
   */
  frozenBackbone: { epochs: 30, lr: 1e-3, l2: 1e-4, featureNorm: 5, classWeights: 'balanced' },
  /**
   * The `ensemble` graph's head on its four default members' features side by side (each member's
   * scaled to `featureNorm` first), from `npm run bench -- recipes --models ensemble` (2026-12-02):
   * 91.04 ± 0.96, the hand-chosen recipe's 30 epochs 90.97 ± 0.99.
   */
  ensemble: { epochs: 10, lr: 1e-3, l2: 1e-4, featureNorm: 10, classWeights: 'balanced' },
} as const satisfies Record<string, HeadRecipe>;

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
 * How the two-stage recipe validates unless told otherwise: a tenth of each class's training
 * images held out, and the fine-tuning stage stopped once its validation loss has not improved for
 * 2 epochs, its best epoch's weights restored (fine-tuning overfits within a few epochs, and the
 * epoch to stop at must not be chosen on the test images). The head's stage runs its validated
 * epochs as the one-stage graphs do.
 */
export const TWO_STAGE_VALIDATION = { valSplit: 0.1, fineTunePatience: 2 } as const satisfies Partial<ExperimentOptions>;

/**
 * The Keras transfer-learning recipe in two stages: the head on cached features of the frozen
 * backbone, then the backbone's top `blocks` blocks and the head together on freshly augmented
 * images at a lower learning rate (the frozen part below them on the inference engine, see
 * `SplitNetwork`), validated on held-out training images ({@link TWO_STAGE_VALIDATION}).
 */
export function headThenFineTune(stages: { head: Settings & { epochs: number; lr: number }; fineTune: { blocks: number; epochs: number; lr: number } }): Recipe {
  return { kind: 'head, then fine-tune', defaults: { ...TWO_STAGE_VALIDATION, ...stages.head, cache: true, fineTune: stages.fineTune.blocks, fineTuneEpochs: stages.fineTune.epochs, fineTuneLr: stages.fineTune.lr } };
}
