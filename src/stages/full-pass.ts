import { concatMap, defer, map, reduce, type Observable } from 'rxjs';
import type { ImageBatch, Predictions, Sample } from '../core/types.js';
import { engineUsed, type EngineUsed, type InferenceEngine } from '../engines/engine.js';
import type { Classifier } from '../models/classifier.js';
import { measure, type Meter } from '../operators/measure.js';
import { addPredictions, emptyTally, summarize, type Metrics, type Tally } from '../operators/metrics.js';
import { predict } from '../operators/predict.js';
import { countImages } from './feed.js';

/** The study's speed figure: one inference pass over the whole dataset at batch 32. */
export const SPEED_BATCH = 32;

export interface FullPassResult {
  /** Figures of the test images, and of every image (the study's "average accuracy"). */
  test: Metrics;
  all: Metrics;
  seconds: number;
  /** What computed it: {@link EngineUsed}. */
  engine: EngineUsed;
}

export interface FullPassOptions {
  model: Classifier;
  /** An image feed at {@link SPEED_BATCH}: decode → batch under a prefetch bound. */
  feed: (samples: readonly Sample[], consume: (batches: Observable<ImageBatch>) => Observable<Predictions>) => Observable<Predictions>;
  meter?: Meter;
  onProgress?: (done: number, total: number) => void;
}

/**
 * The study's speed figure and the test figures: decode → classifier (on `engine`, opened on the
 * whole classifier) over every image, test images first, timed from the first image.
 */
export function fullPass(engine: InferenceEngine, data: { test: readonly Sample[]; train: readonly Sample[] }, options: FullPassOptions): Observable<FullPassResult> {
  return defer(() => {
    const start = performance.now();
    const total = data.test.length + data.train.length;
    let done = 0;
    const step = predict(options.model, engine);
    const pass = (samples: readonly Sample[], seed: Tally) =>
      options
        .feed(samples, (batches) => batches.pipe(options.meter ? measure(options.meter, 'predict', step, countImages) : step))
        .pipe(
          map((p) => {
            done += countImages(p);
            options.onProgress?.(done, total);
            return p;
          }),
          reduce(addPredictions, seed),
        );
    const classes = options.model.classes;
    return pass(data.test, emptyTally(classes)).pipe(
      concatMap((test) =>
        pass(data.train, test).pipe(
          map((all) => ({ test: summarize(test), all: summarize(all), seconds: (performance.now() - start) / 1000, engine: engineUsed(engine) })),
        ),
      ),
    );
  });
}
