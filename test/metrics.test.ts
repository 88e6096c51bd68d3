import { from, lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { Predictions } from '../src/core/types.js';
import { metrics } from '../src/operators/metrics.js';

const preds = (rows: number[][], labels: number[]): Predictions => ({
  probs: Float32Array.from(rows.flat()),
  labels: Int32Array.from(labels),
  paths: labels.map((_, i) => `p${i}`),
  classes: rows[0]!.length,
  lossSum: labels.reduce((s, l, i) => s - Math.log(rows[i]![l]!), 0),
});

describe('metrics', () => {
  it('aggregates top-1, top-5, loss, per-class and mean per-class accuracy and the confusion matrix over batches', async () => {
    // 6 classes; rank of the true class: 0, 1, 5 (only top-5 miss), 0
    const a = preds(
      [
        [0.5, 0.1, 0.1, 0.1, 0.1, 0.1],
        [0.4, 0.3, 0.1, 0.1, 0.05, 0.05],
      ],
      [0, 1],
    );
    const b = preds(
      [
        [0.3, 0.2, 0.2, 0.15, 0.14, 0.01],
        [0.1, 0.1, 0.1, 0.1, 0.1, 0.5],
      ],
      [5, 5],
    );
    const steps = await lastValueFrom(from([a, b]).pipe(metrics(6), toArray()));
    expect(steps).toHaveLength(2);
    expect(steps[0]!.top1).toBe(0.5);
    const m = steps[1]!;
    expect(m.count).toBe(4);
    expect(m.top1).toBe(0.5);
    expect(m.top5).toBe(0.75);
    expect(m.loss).toBeCloseTo((a.lossSum + b.lossSum) / 4, 6);
    expect(m.perClass[0]).toBe(1);
    expect(m.perClass[1]).toBe(0);
    expect(m.perClass[5]).toBe(0.5);
    expect(m.perClass[2]).toBeNaN();
    expect(m.meanPerClass).toBeCloseTo(0.5, 6);
    expect(m.confusion[1 * 6 + 0]).toBe(1);
    expect(m.confusion[5 * 6 + 0]).toBe(1);
    expect(m.confusion[5 * 6 + 5]).toBe(1);
    expect(m.confusion.reduce((s, v) => s + v, 0)).toBe(4);
  });

  it('mean per-class accuracy weighs classes equally, unlike top-1', async () => {
    const many = preds(Array.from({ length: 9 }, () => [0.9, 0.1]), new Array(9).fill(0));
    const few = preds([[0.9, 0.1]], [1]);
    const [m] = await lastValueFrom(from([many, few]).pipe(metrics(2), toArray())).then((s) => s.slice(-1));
    expect(m!.top1).toBeCloseTo(0.9, 6);
    expect(m!.meanPerClass).toBeCloseTo(0.5, 6);
  });

  it('refuses predictions over another number of classes', async () => {
    await expect(lastValueFrom(from([preds([[0.5, 0.5]], [0])]).pipe(metrics(3)))).rejects.toThrow(/metrics for 3 classes/);
  });
});
