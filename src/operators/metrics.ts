import { map, scan, type OperatorFunction } from 'rxjs';
import type { Predictions } from '../core/types.js';

/** Running classification metrics; `confusion[truth * classes + predicted]` counts images. */
export interface Metrics {
  classes: number;
  count: number;
  loss: number;
  top1: number;
  top5: number;
  /** Accuracy of each class (NaN for a class with no images). */
  perClass: number[];
  /** Mean of the per-class accuracies over classes that have images (Caltech's usual figure). */
  meanPerClass: number;
  confusion: Int32Array;
}

export interface Tally {
  classes: number;
  count: number;
  lossSum: number;
  top1: number;
  top5: number;
  confusion: Int32Array;
}

/** How many classes score strictly higher than the true one (0 = top-1 hit). */
function rankOfTruth(probs: Float32Array, offset: number, classes: number, label: number): number {
  const truth = probs[offset + label]!;
  let rank = 0;
  for (let c = 0; c < classes; c++) if (probs[offset + c]! > truth) rank++;
  return rank;
}

function argmax(probs: Float32Array, offset: number, classes: number): number {
  let best = 0;
  for (let c = 1; c < classes; c++) if (probs[offset + c]! > probs[offset + best]!) best = c;
  return best;
}

export function emptyTally(classes: number): Tally {
  return { classes, count: 0, lossSum: 0, top1: 0, top5: 0, confusion: new Int32Array(classes * classes) };
}

export function addPredictions(tally: Tally, batch: Predictions): Tally {
  const { classes } = tally;
  if (batch.classes !== classes) throw new Error(`metrics for ${classes} classes got predictions over ${batch.classes}`);
  const confusion = tally.confusion.slice();
  let top1 = tally.top1;
  let top5 = tally.top5;
  batch.labels.forEach((label, row) => {
    const offset = row * classes;
    const rank = rankOfTruth(batch.probs, offset, classes, label);
    if (rank === 0) top1++;
    if (rank < 5) top5++;
    confusion[label * classes + argmax(batch.probs, offset, classes)]!++;
  });
  return { classes, count: tally.count + batch.labels.length, lossSum: tally.lossSum + batch.lossSum, top1, top5, confusion };
}

export function summarize(tally: Tally): Metrics {
  const { classes, confusion, count } = tally;
  const perClass = Array.from({ length: classes }, (_, c) => {
    let total = 0;
    for (let p = 0; p < classes; p++) total += confusion[c * classes + p]!;
    return total === 0 ? NaN : confusion[c * classes + c]! / total;
  });
  const present = perClass.filter((a) => !Number.isNaN(a));
  return {
    classes,
    count,
    loss: count ? tally.lossSum / count : NaN,
    top1: count ? tally.top1 / count : NaN,
    top5: count ? tally.top5 / count : NaN,
    perClass,
    meanPerClass: present.length ? present.reduce((a, b) => a + b, 0) / present.length : NaN,
    confusion,
  };
}

/**
 * A `scan` over prediction batches: after each batch, the metrics of everything seen so far. Top-k
 * counts ties against the truth (a class scoring equal to the true one does not outrank it).
 */
export function metrics(classes: number): OperatorFunction<Predictions, Metrics> {
  return (source) => source.pipe(scan(addPredictions, emptyTally(classes)), map(summarize));
}
