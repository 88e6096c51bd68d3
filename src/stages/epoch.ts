import type * as tf from '@tensorflow/tfjs-core';
import { last, map, type Observable, type OperatorFunction } from 'rxjs';
import type { Batch, Predictions, Sample } from '../core/types.js';
import type { Classifier } from '../models/classifier.js';
import { measure, type Meter } from '../operators/measure.js';
import { emptyTally, metrics, summarize, type Metrics } from '../operators/metrics.js';
import { predict } from '../operators/predict.js';
import { train, type TrainOptions } from '../operators/train.js';
import type { Progress } from './events.js';
import { countImages } from './feed.js';

/**
 * Batches of `samples` put through `step`: cached features, or decoded images inside a prefetch
 * bound (`training` says which preparation applies: augmentation, or the views as rows).
 */
export type BatchSource = <T extends Predictions>(samples: readonly Sample[], epoch: number, training: boolean, step: OperatorFunction<Batch, T>) => Observable<T>;

export interface EpochContext {
  /** The classifier trained (what callbacks save and restore). */
  model: Classifier;
  /** What the steps run, when not `model` itself: the trainable top of its split backbone, sharing its weights and fed the activations at the cut. */
  network?: Classifier;
  source: BatchSource;
  meter?: Meter;
  onProgress?: (progress: Progress) => void;
}

const timed = <I, O>(meter: Meter | undefined, name: string, operator: OperatorFunction<I, O>, size?: (o: O) => number) => (meter ? measure(meter, name, operator, size) : operator);

/** Loss, top-1, … over the predictions of a pass, with progress; one value when the pass completes. */
function summary(ctx: EpochContext, phase: Progress['phase'], epoch: number, total: number): OperatorFunction<Predictions, Metrics> {
  const classes = ctx.model.classes;
  let done = 0;
  return (predictions) =>
    predictions.pipe(
      map((p) => {
        done += countImages(p);
        ctx.onProgress?.({ phase, epoch, done, total });
        return p;
      }),
      timed(ctx.meter, 'metrics', metrics(classes)),
      last(null, summarize(emptyTally(classes))),
    );
}

/** One epoch of optimisation over `samples` in their order: the training figures, as the batches were before each step. */
export function trainEpoch(ctx: EpochContext, epoch: number, samples: readonly Sample[], optimizer: tf.Optimizer, options: TrainOptions = {}): Observable<Metrics> {
  return ctx.source(samples, epoch, true, timed(ctx.meter, 'train', train(ctx.network ?? ctx.model, optimizer, options), countImages)).pipe(summary(ctx, 'train', epoch, samples.length));
}

/** The classifier's figures on `samples` in inference mode. */
export function evaluate(ctx: EpochContext, epoch: number, samples: readonly Sample[]): Observable<Metrics> {
  return ctx.source(samples, epoch, false, timed(ctx.meter, 'predict', predict(ctx.network ?? ctx.model), countImages)).pipe(summary(ctx, 'evaluate', epoch, samples.length));
}
