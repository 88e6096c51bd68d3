import { concatMap, defer, EMPTY, map, of, reduce, type Observable } from 'rxjs';
import type { ImageBatch, Predictions, Sample } from '../core/types.js';
import { engineUsed, type EngineUsed, type InferenceEngine } from '../engines/engine.js';
import { lossSum } from '../core/forward.js';
import type { Classifier } from '../models/classifier.js';
import { measure, type Meter } from '../operators/measure.js';
import { addPredictions, emptyTally, summarize, type Metrics, type Tally } from '../operators/metrics.js';
import { predict } from '../operators/predict.js';
import { countImages } from './feed.js';

/** The study's speed figure: one inference pass over the whole dataset at batch 32. */
export const SPEED_BATCH = 32;

/** Test-time augmentation of the final pass: none, or each test image averaged with its mirror. */
export const TTA_CHOICES = ['none', 'flip'] as const;
export type Tta = (typeof TTA_CHOICES)[number];

/** Per-image test probabilities, row `i` of `probs` (`classes` wide) for `paths[i]`, in the split's test order. */
export interface TestPredictions {
  classes: number;
  paths: string[];
  labels: Int32Array;
  probs: Float32Array;
}

export interface FullPassResult {
  /** Figures of the test images, and of every image (the study's "average accuracy"), plain images only. */
  test: Metrics;
  all: Metrics;
  /** Wall time of the plain pass over every image: the speed figure. */
  seconds: number;
  /** What computed it: {@link EngineUsed}. */
  engine: EngineUsed;
  /** With flip TTA: the test figures of each image's probabilities averaged with its mirror's, and the seconds of the mirrored pass (not in `seconds`). */
  tta?: { test: Metrics; seconds: number };
  /** The test probabilities the headline figures come from (with TTA, the averaged ones). */
  predictions: TestPredictions;
}

export interface FullPassOptions {
  model: Classifier;
  /** An image feed at {@link SPEED_BATCH}: decode → [mirror] → batch under a prefetch bound. */
  feed: (samples: readonly Sample[], consume: (batches: Observable<ImageBatch>) => Observable<Predictions>, prepare?: 'plain' | 'mirror') => Observable<Predictions>;
  tta?: Tta;
  meter?: Meter;
  onProgress?: (done: number, total: number) => void;
}

/** Rows of `batch` kept by path (predictions arrive in batches, decode may reorder images). */
function keepRows(kept: Map<string, { label: number; probs: Float32Array }>, batch: Predictions): void {
  batch.paths.forEach((path, row) => kept.set(path, { label: batch.labels[row]!, probs: batch.probs.slice(row * batch.classes, (row + 1) * batch.classes) }));
}

/** The kept rows in the order of `samples` (files that did not decode have no row). */
function inOrder(samples: readonly Sample[], kept: Map<string, { label: number; probs: Float32Array }>, classes: number): TestPredictions {
  const rows = samples.flatMap((s) => kept.get(s.path) ?? []);
  const probs = new Float32Array(rows.length * classes);
  rows.forEach((r, i) => probs.set(r.probs, i * classes));
  return { classes, paths: samples.filter((s) => kept.has(s.path)).map((s) => s.path), labels: Int32Array.from(rows, (r) => r.label), probs };
}

/**
 * The study's speed figure and the test figures: decode → classifier (on `engine`, opened on the
 * whole classifier) over every image, test images first, timed from the first image. With flip
 * TTA, a second pass over the mirrored test images follows, outside the timed span, so the speed
 * figure stays that of one plain pass; each test image's probabilities are then averaged with its
 * mirror's.
 */
export function fullPass(engine: InferenceEngine, data: { test: readonly Sample[]; train: readonly Sample[] }, options: FullPassOptions): Observable<FullPassResult> {
  return defer(() => {
    const start = performance.now();
    const total = data.test.length + data.train.length;
    let done = 0;
    const step = predict(options.model, engine);
    const classes = options.model.classes;
    const plainRows = new Map<string, { label: number; probs: Float32Array }>();
    const run = (samples: readonly Sample[], prepare: 'plain' | 'mirror') =>
      options.feed(samples, (batches) => batches.pipe(options.meter ? measure(options.meter, prepare === 'plain' ? 'predict' : 'predict (mirrored, TTA)', step, countImages) : step), prepare);
    const pass = (samples: readonly Sample[], seed: Tally, keep: boolean) =>
      run(samples, 'plain').pipe(
        map((p) => {
          done += countImages(p);
          options.onProgress?.(done, total);
          if (keep) keepRows(plainRows, p);
          return p;
        }),
        reduce(addPredictions, seed),
      );
    return pass(data.test, emptyTally(classes), true).pipe(
      concatMap((test) => pass(data.train, test, false).pipe(map((all) => ({ test: summarize(test), all: summarize(all), seconds: (performance.now() - start) / 1000, engine: engineUsed(engine) })))),
      concatMap((plain) => {
        if ((options.tta ?? 'none') === 'none') return of({ ...plain, predictions: inOrder(data.test, plainRows, classes) });
        const mirrored = performance.now();
        const averaged = new Map<string, { label: number; probs: Float32Array }>();
        return (data.test.length ? run(data.test, 'mirror') : EMPTY).pipe(
          map((p): Predictions => {
            const probs = new Float32Array(p.probs.length);
            p.paths.forEach((path, row) => {
              const own = plainRows.get(path);
              // the same file decoded in the plain pass; a file that failed there fails here too
              if (!own) throw new Error(`flip TTA: ${path} has a mirrored prediction but no plain one`);
              for (let c = 0; c < classes; c++) probs[row * classes + c] = (own.probs[c]! + p.probs[row * classes + c]!) / 2;
            });
            const batch = { ...p, probs, lossSum: lossSum(probs, p.labels, classes) };
            keepRows(averaged, batch);
            return batch;
          }),
          reduce(addPredictions, emptyTally(classes)),
          map((tally) => ({ ...plain, tta: { test: summarize(tally), seconds: (performance.now() - mirrored) / 1000 }, predictions: inOrder(data.test, averaged, classes) })),
        );
      }),
    );
  });
}
