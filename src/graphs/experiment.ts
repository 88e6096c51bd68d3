import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { concatMap, defer, finalize, from, last, map, range, reduce, switchMap, toArray, type Observable } from 'rxjs';
import { writeFileAtomic, writeJsonAtomic } from '../core/files.js';
import { randomFor, shuffled } from '../core/random.js';
import type { ImageBatch, Predictions, Sample, Skip, Split } from '../core/types.js';
import { createModel, disposeClassifier, type Classifier } from '../models/index.js';
import { augment } from '../operators/augment.js';
import { batch } from '../operators/batch.js';
import { decode } from '../operators/decode.js';
import { discover } from '../operators/discover.js';
import { Meter, measure, measureSource } from '../operators/measure.js';
import { addPredictions, emptyTally, metrics, summarize, type Metrics, type Tally } from '../operators/metrics.js';
import { predict } from '../operators/predict.js';
import { prefetch } from '../operators/prefetch.js';
import { manifestOf, parseProtocol, split } from '../operators/split.js';
import { subset } from '../operators/subset.js';
import { train } from '../operators/train.js';
import { assembleReport, renderMarkdown, type EpochRecord, type Report } from '../report.js';
import { BASE_OPTIONS, type ExperimentOptions, type GraphDefinition } from './graph.js';

/** The study's speed figure: one inference pass over the whole dataset at batch 32. */
export const SPEED_BATCH = 32;

export interface Progress {
  phase: 'train' | 'evaluate' | 'full pass';
  epoch: number;
  done: number;
  total: number;
}

export interface ExperimentHooks {
  onProgress?: (progress: Progress) => void;
  /** Called once per file that cannot be used, the first time it is met. */
  onSkip?: (skip: Skip) => void;
  onEpoch?: (record: EpochRecord, epochs: number) => void;
  /** One-line notices that do not stop the run. */
  onWarning?: (line: string) => void;
}

const seconds = () => performance.now() / 1000;
const countImages = (p: Predictions) => p.labels.length;

/**
 * One architecture's experiment as an observable graph:
 * dataset → split → [decode → augment → batch → prefetch → train → metrics] per epoch, each
 * followed by [decode → batch → predict → metrics] on the test images, then one timed inference
 * pass over every image → report. Emits the report once its files are written.
 */
export function experiment(graph: GraphDefinition, given: Partial<ExperimentOptions> & Pick<ExperimentOptions, 'data' | 'out'>, hooks: ExperimentHooks = {}): Observable<Report> {
  const options: ExperimentOptions = { ...BASE_OPTIONS, ...graph.defaults, ...given };
  return defer(() => {
    const startedAt = new Date();
    const meter = new Meter();
    const skipped = new Map<string, Skip>();
    const protocol = parseProtocol(options.testData ? 'external' : options.protocol);
    const skip = (s: Skip) => {
      if (skipped.has(s.path)) return;
      skipped.set(s.path, s);
      hooks.onSkip?.(s);
    };

    const withModel = (data: Split, model: Classifier) => {
      const optimizer = tf.train.adam(options.lr);
      const size = model.inputSize;
      const decodeOptions = { size, mode: options.resize, concurrency: options.concurrency };

      /** decode → [augment] → batch under a prefetch bound, ending in `consume`. */
      const feed = (samples: Sample[], epoch: number, batchSize: number, augmented: boolean, consume: (batches: Observable<ImageBatch>) => Observable<Predictions>) => {
        const pull = prefetch(options.prefetch * batchSize);
        const decoded = pull.source(samples).pipe(
          measure(meter, 'decode', decode({ ...decodeOptions, onSkip: (s) => (skip(s), pull.drop()) })),
        );
        const images = augmented ? decoded.pipe(measure(meter, 'augment', augment({ seed: options.seed, epoch }))) : decoded;
        return consume(images.pipe(measure(meter, 'batch', batch(batchSize), (b) => b.y.length))).pipe(pull.consumed((p) => p.labels.length));
      };
      const progressOf = (phase: Progress['phase'], epoch: number, total: number) => {
        let done = 0;
        return map((p: Predictions) => {
          done += p.labels.length;
          hooks.onProgress?.({ phase, epoch, done, total });
          return p;
        });
      };
      const evaluate = (samples: Sample[], epoch: number) =>
        feed(samples, epoch, options.batch, false, (b) => b.pipe(measure(meter, 'predict', predict(model), countImages))).pipe(
          progressOf('evaluate', epoch, samples.length),
          measure(meter, 'metrics', metrics(data.classes.length)),
          last(null, summarize(emptyTally(data.classes.length))),
        );
      const trainEpoch = (epoch: number): Observable<EpochRecord> => {
        const start = seconds();
        const order = shuffled(data.train, randomFor(options.seed, 'epoch', epoch));
        return feed(order, epoch, options.batch, options.augment, (b) => b.pipe(measure(meter, 'train', train(model, optimizer), countImages))).pipe(
          progressOf('train', epoch, order.length),
          metrics(data.classes.length),
          last(null, summarize(emptyTally(data.classes.length))),
          concatMap((fit: Metrics) =>
            evaluate(data.test, epoch).pipe(
              map((val) => {
                const record = { epoch, loss: fit.loss, top1: fit.top1, valLoss: val.loss, valTop1: val.top1, seconds: seconds() - start };
                hooks.onEpoch?.(record, options.epochs);
                return record;
              }),
            ),
          ),
        );
      };
      const fullPass = defer(() => {
        const start = seconds();
        const total = data.test.length + data.train.length;
        const progress = progressOf('full pass', 0, total);
        const pass = (samples: Sample[], seed: Tally) =>
          feed(samples, 0, SPEED_BATCH, false, (b) => b.pipe(measure(meter, 'predict', predict(model), countImages))).pipe(progress, reduce(addPredictions, seed));
        return pass(data.test, emptyTally(data.classes.length)).pipe(
          concatMap((test) => pass(data.train, test).pipe(map((all) => ({ test: summarize(test), all: summarize(all), seconds: seconds() - start })))),
        );
      });

      return range(1, options.epochs).pipe(
        concatMap(trainEpoch),
        toArray(),
        concatMap((history) =>
          fullPass.pipe(
            map((pass) =>
              assembleReport({ graph: graph.name, model, data, history, pass, skipped: [...skipped.values()], operators: meter.snapshot(), options, startedAt, speedBatch: SPEED_BATCH }),
            ),
          ),
        ),
        finalize(() => optimizer.dispose()),
      );
    };

    const testData = options.testData ? measureSource(meter, 'discover', discover(options.testData, { exclude: options.exclude })) : undefined;
    return measureSource(meter, 'discover', discover(options.data, { exclude: options.exclude })).pipe(
      subset(options.limit, options.seed),
      split({ protocol, seed: options.seed, ...(testData ? { testData: testData.pipe(subset(options.limit, options.seed)) } : {}) }),
      concatMap(async (data) => {
        data.skipped.forEach(skip);
        if (data.shortClasses.length > 0) {
          hooks.onWarning?.(`${data.protocol} left out ${data.shortClasses.length} class(es) with too few images: ${data.shortClasses.map((c) => `${c.id} (${c.images})`).join(', ')}`);
        }
        if (data.train.length === 0) throw new Error(`the split (${data.protocol}) left no training images`);
        await writeJsonAtomic(join(options.out, 'manifest.json'), manifestOf(data));
        return data;
      }),
      switchMap((data) =>
        from(createModel(graph.model, { classes: data.classes.length, weights: options.weights, inputSize: options.imageSize, alpha: options.alpha })).pipe(
          switchMap((model) => withModel(data, model).pipe(finalize(() => disposeClassifier(model)))),
        ),
      ),
      concatMap(async (report) => {
        await writeJsonAtomic(join(options.out, 'report.json'), report);
        await writeFileAtomic(join(options.out, 'report.md'), renderMarkdown(report));
        return report;
      }),
    );
  });
}
