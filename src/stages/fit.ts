import * as tf from '@tensorflow/tfjs-core';
import { concat, concatMap, defer, EMPTY, finalize, map, range, takeWhile, type Observable } from 'rxjs';
import { randomFor, shuffled } from '../core/random.js';
import type { Sample } from '../core/types.js';
import type { TrainOptions } from '../operators/train.js';
import type { EpochRecord } from '../report.js';
import { restoreOptimizer, type NamedTensor } from '../training/checkpoint.js';
import type { LrSchedule } from '../training/schedule.js';
import { BestWeights, Checkpointer, EarlyStopping, LearningRateSchedule, recordEpoch, type Callback, type RunState } from './callbacks.js';
import { evaluate, trainEpoch, type EpochContext } from './epoch.js';
import type { StagePlan } from './plan.js';

/** What a checkpoint hands the stage it was taken in: the optimizer's slots and the best weights (the stage owns them). */
export interface ResumedStage {
  slots: NamedTensor[];
  best: tf.Tensor[] | null;
}

export interface FitOptions<S> {
  plan: StagePlan;
  /** The stage's epochs: (first, last], numbered across stages. */
  span: { first: number; last: number };
  /** Where the run stands; updated after every epoch (and reset when this stage starts). */
  run: RunState;
  index: number;
  ctx: EpochContext;
  /** Images trained on (shuffled every epoch from (seed, epoch)) and images the "val" figures are of. */
  fit: readonly Sample[];
  evaluated: readonly Sample[];
  seed: number;
  lrSchedule: LrSchedule;
  warmup: number;
  patience?: number;
  train: TrainOptions;
  /** The run folder the checkpoint goes to, and the JSON state it saves; null: no checkpoints (a trial that is never resumed, such as the recipe bench's). */
  out: string | null;
  state: (record: EpochRecord) => S;
  resumed: ResumedStage | null;
  /** After each epoch is recorded and checkpointed. */
  onEpoch: (record: EpochRecord) => void;
  /** At the stage's start: the checkpoint write in progress, to wait for on interruption. */
  onCheckpointer: (pending: () => Promise<unknown>) => void;
  /** At the stage's end: whether the best epoch's weights were put back. */
  onEnd: (restoredBest: boolean) => void;
}

/**
 * One training stage: its epochs from where the run stands, each [train → evaluate → callbacks
 * (learning-rate schedule, best weights, early stopping, checkpoint)], with its own Adam optimizer;
 * the best epoch's weights restored at its end under early stopping.
 */
export function fitStage<S>(o: FitOptions<S>): Observable<EpochRecord> {
  return defer(() => {
    const { run, plan, span } = o;
    if (run.stage !== o.index) Object.assign(run, { stage: o.index, best: null, stoppedEarly: false });
    const optimizer = tf.train.adam(plan.lr);
    const best = o.patience !== undefined ? new BestWeights(o.ctx.model, o.resumed?.best ?? null) : null;
    if (!best) o.resumed?.best?.forEach((t) => t.dispose());
    const schedule = new LearningRateSchedule(optimizer, { lr: plan.lr, schedule: o.lrSchedule, warmup: o.warmup, epochs: plan.epochs, firstEpoch: span.first });
    const checkpointer = o.out === null ? null : new Checkpointer(o.out, o.ctx.model, optimizer, best, o.state);
    if (checkpointer) o.onCheckpointer(() => checkpointer.pending);
    const callbacks: Callback[] = [schedule, ...(best ? [best, new EarlyStopping(o.patience!)] : []), ...(checkpointer ? [checkpointer] : [])];
    const restoreSlots = defer(async () => {
      const slots = o.resumed?.slots;
      if (slots) await restoreOptimizer(optimizer, slots).finally(() => slots.forEach((s) => s.tensor.dispose()));
    });
    const from = Math.max(run.epoch, span.first);
    const epochs = defer(() => range(from + 1, run.stoppedEarly ? 0 : Math.max(0, span.last - from))).pipe(
      concatMap((epoch) => {
        const start = performance.now();
        callbacks.forEach((c) => c.onEpochBegin?.(epoch));
        return trainEpoch(o.ctx, epoch, shuffled(o.fit, randomFor(o.seed, 'epoch', epoch)), optimizer, o.train).pipe(
          concatMap((fitted) =>
            evaluate(o.ctx, epoch, o.evaluated).pipe(
              map((val): EpochRecord => ({ epoch, loss: fitted.loss, top1: fitted.top1, valLoss: val.loss, valTop1: val.top1, valMeanPerClass: val.meanPerClass, lr: schedule.current, seconds: (performance.now() - start) / 1000 })),
            ),
          ),
          concatMap(async (record) => {
            recordEpoch(run, record);
            for (const callback of callbacks) await callback.onEpochEnd?.(record, run);
            o.onEpoch(record);
            return record;
          }),
        );
      }),
      takeWhile(() => !run.stoppedEarly, true),
    );
    const restoreBest = defer(() => (o.onEnd(best?.restore() ?? false), EMPTY));
    return concat(restoreSlots.pipe(concatMap(() => EMPTY)), epochs, restoreBest).pipe(
      finalize(() => {
        optimizer.dispose();
        best?.dispose();
      }),
    );
  });
}
