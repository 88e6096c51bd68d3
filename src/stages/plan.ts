import type { Classifier } from '../models/classifier.js';

/** One training stage of a run: its epochs, learning rate, what it trains on and what trains. */
export interface StagePlan {
  name: 'train' | 'head' | 'fine-tune';
  epochs: number;
  lr: number;
  /** Cached backbone features (computed once), or images decoded every epoch. */
  input: 'features' | 'images';
  /** Training images augmented anew every epoch (images only). */
  augment: boolean;
  /** The backbone's unfrozen blocks train with the head. */
  tuneBackbone: boolean;
  /** Early stopping on the validation loss, the best epoch restored at the stage's end (absent: every epoch runs, the last one's weights kept). */
  patience?: number;
}

export interface PlanOptions {
  epochs: number;
  lr: number;
  cache: boolean;
  augment: boolean;
  fineTune?: number;
  fineTuneEpochs?: number;
  fineTuneLr?: number;
  patience?: number;
  fineTunePatience?: number;
}

/**
 * The stages the options make. With `fineTune` and `fineTuneEpochs`: the head first (on cached
 * features when the cache is on), then the top blocks with the head on augmented images at a
 * lower learning rate. Otherwise one stage: the head on cached features (a frozen backbone with the
 * cache on), or everything that trains on images.
 */
export function planStages(options: PlanOptions, model: Pick<Classifier, 'backbone' | 'members'>): StagePlan[] {
  if (options.fineTuneEpochs && !options.fineTune) throw new Error("--fine-tune-epochs needs --fine-tune N (how many of the backbone's last blocks the second stage trains)");
  // an ensemble's head only ever sees its members' cached features side by side
  if (model.members && (options.fineTune || !options.cache)) throw new Error('the ensemble graph trains one head on its members\' cached features: --fine-tune and --no-cache do not apply');
  const cached = (model.backbone !== null || model.members !== undefined) && options.cache;
  const head = { epochs: options.epochs, lr: options.lr, input: cached ? 'features' : 'images', augment: !cached && options.augment } as const;
  const patience = (p: number | undefined) => (p !== undefined ? { patience: p } : {});
  if (options.fineTune && options.fineTuneEpochs) {
    return [
      { name: 'head', ...head, tuneBackbone: false, ...patience(options.patience) },
      { name: 'fine-tune', epochs: options.fineTuneEpochs, lr: options.fineTuneLr ?? options.lr / 10, input: 'images', augment: options.augment, tuneBackbone: true, ...patience(options.fineTunePatience ?? options.patience) },
    ];
  }
  if (options.fineTune) return [{ name: 'train', epochs: options.epochs, lr: options.lr, input: 'images', augment: options.augment, tuneBackbone: true, ...patience(options.patience) }];
  return [{ name: 'train', ...head, tuneBackbone: false, ...patience(options.patience) }];
}

/** The epochs of stage `index`: (first, last], numbered across stages. */
export function stageEpochs(stages: readonly StagePlan[], index: number): { first: number; last: number } {
  const first = stages.slice(0, index).reduce((n, s) => n + s.epochs, 0);
  return { first, last: first + stages[index]!.epochs };
}
