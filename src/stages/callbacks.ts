import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../models/classifier.js';
import type { EpochRecord } from '../report.js';
import { optimizerSlots, restoreWeights, saveCheckpoint, trainedVariables } from '../training/checkpoint.js';
import { learningRate, type LrSchedule } from '../training/schedule.js';

/** Where the run stands after each finished epoch; what a checkpoint restores. */
export interface RunState {
  /** The last finished epoch (0 before the first); epochs are numbered across stages. */
  epoch: number;
  history: EpochRecord[];
  /** The best epoch of the current stage (lowest validation loss). */
  best: { epoch: number; valLoss: number } | null;
  /** The current stage stopped early. */
  stoppedEarly: boolean;
  /** The stage `best` and `stoppedEarly` belong to (index into the run's stages; absent in checkpoints from before stages: 0). */
  stage?: number;
}

export const newRunState = (): RunState => ({ epoch: 0, history: [], best: null, stoppedEarly: false, stage: 0 });

/** Adds a finished epoch to the run state, moving `best` when its validation loss is lower. */
export function recordEpoch(run: RunState, record: EpochRecord): void {
  run.history.push(record);
  run.epoch = record.epoch;
  if (run.best === null || record.valLoss < run.best.valLoss) run.best = { epoch: record.epoch, valLoss: record.valLoss };
}

/** Epoch-end callbacks, in the style of Keras' `Callback`: told of each epoch in turn, after it is recorded. */
export interface Callback {
  onEpochBegin?(epoch: number): void;
  onEpochEnd?(record: EpochRecord, run: RunState): void | Promise<void>;
}

/**
 * Sets the optimizer's learning rate at each epoch's start from a schedule over a stage's epochs
 * (`firstEpoch` + 1 … `firstEpoch` + `epochs`).
 */
export class LearningRateSchedule implements Callback {
  current: number;

  constructor(
    private readonly optimizer: tf.Optimizer,
    private readonly plan: { lr: number; schedule: LrSchedule; warmup: number; epochs: number; firstEpoch: number },
  ) {
    this.current = plan.lr;
  }

  onEpochBegin(epoch: number): void {
    const { lr, schedule, epochs, warmup, firstEpoch } = this.plan;
    this.current = learningRate(lr, schedule, epoch - firstEpoch, epochs, warmup);
    // tfjs optimizers read their learning rate at every step but expose no setter for schedules
    (this.optimizer as unknown as { learningRate: number }).learningRate = this.current;
  }
}

/** Stops the stage when the validation loss has not improved for `patience` epochs. */
export class EarlyStopping implements Callback {
  constructor(readonly patience: number) {}

  onEpochEnd(record: EpochRecord, run: RunState): void {
    if (run.best && record.epoch - run.best.epoch >= this.patience) run.stoppedEarly = true;
  }
}

/** Keeps a copy of the trained variables of the best epoch, to restore them at the stage's end. */
export class BestWeights implements Callback {
  constructor(
    private readonly model: Classifier,
    /** The best weights so far (from a checkpoint); the callback owns them. */
    private kept: tf.Tensor[] | null = null,
  ) {}

  get tensors(): tf.Tensor[] | null {
    return this.kept;
  }

  onEpochEnd(record: EpochRecord, run: RunState): void {
    if (run.best?.epoch !== record.epoch) return;
    this.dispose();
    this.kept = trainedVariables(this.model).map((v) => tf.clone(v.read()));
  }

  /** Puts the best weights back into the model; false when there are none. */
  restore(): boolean {
    if (!this.kept) return false;
    restoreWeights(this.model, this.kept);
    return true;
  }

  dispose(): void {
    this.kept?.forEach((t) => t.dispose());
    this.kept = null;
  }
}

export const CHECKPOINT_DIR = 'checkpoint';

/**
 * After each epoch, saves what resumes the run exactly: the trained weights, the optimizer's slots,
 * the best weights and the state `state()` describes (the run state, options, random state).
 */
export class Checkpointer<S> implements Callback {
  /** The write in progress, if any (an interrupted run waits for it before reporting). */
  pending: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly out: string,
    private readonly model: Classifier,
    private readonly optimizer: tf.Optimizer,
    private readonly best: BestWeights | null,
    private readonly state: (record: EpochRecord) => S,
  ) {}

  async onEpochEnd(record: EpochRecord): Promise<void> {
    const slots = await optimizerSlots(this.optimizer);
    try {
      this.pending = saveCheckpoint(join(this.out, CHECKPOINT_DIR), record.epoch, this.state(record), {
        weights: trainedVariables(this.model).map((v) => v.read()),
        optimizer: slots,
        best: this.best?.tensors ?? null,
      });
      await this.pending;
    } finally {
      slots[0]!.tensor.dispose(); // the iteration count is a fresh scalar; the rest are the optimizer's own variables
    }
  }
}
