import type { ExperimentOptions, Recipe } from './graph.js';

type Settings = Partial<Omit<ExperimentOptions, 'data' | 'out' | 'fineTune' | 'fineTuneEpochs' | 'fineTuneLr'>>;

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
