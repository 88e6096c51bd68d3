import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { from, lastValueFrom, of, toArray, type Observable } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { normalize } from '../src/core/normalize.js';
import type { FeatureBatch, ImageBatch, Sample } from '../src/core/types.js';
import type { EngineOutput, InferenceEngine } from '../src/engines/engine.js';
import { openEngine, resolveWorkers, TfjsEngine } from '../src/engines/index.js';
import { denseHead, disposeClassifier, type Classifier } from '../src/models/classifier.js';
import { predict } from '../src/operators/predict.js';
import { BestWeights, Checkpointer, EarlyStopping, LearningRateSchedule, newRunState, recordEpoch } from '../src/stages/callbacks.js';
import { prepareData } from '../src/stages/data.js';
import { evaluate, trainEpoch, type EpochContext } from '../src/stages/epoch.js';
import { fitStage } from '../src/stages/fit.js';
import { featureBatches, FeatureStore } from '../src/stages/features.js';
import { imageFeed } from '../src/stages/feed.js';
import { fullPass } from '../src/stages/full-pass.js';
import { planStages, stageEpochs } from '../src/stages/plan.js';
import type { EpochRecord } from '../src/report.js';
import { loadCheckpoint, trainedVariables } from '../src/training/checkpoint.js';
import { FIXTURE_ROOT, fixtureImages, temporaryDir } from './helpers.js';

const SIDE = 8;

/** A tiny conv backbone (global-average-pooled to 4 features) and a dense head for 3 classes. */
function tinyClassifier(): Classifier {
  const backbone = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [SIDE, SIDE, 3], filters: 4, kernelSize: 3, activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) }),
      tfl.layers.globalAveragePooling2d({}),
    ],
  });
  backbone.trainable = false;
  return { name: 'tiny', inputSize: SIDE, preprocessing: 'unit', classes: 3, backbone, head: denseHead(4, 3, { seed: 1 }), weights: 'random' };
}

async function samplesOf(classes: string[], perClass: number): Promise<Sample[]> {
  return (await Promise.all(classes.map(async (c, label) => (await fixtureImages(c)).slice(0, perClass).map((path) => ({ path, label }))))).flat();
}

/** An engine that counts its batches and answers with each image's first byte repeated `width` times. */
class CountingEngine implements InferenceEngine {
  readonly name = 'counting';
  readonly device = 'test';
  readonly threads = 0;
  batches = 0;
  disposed = 0;
  constructor(private readonly width: number) {}
  async run(batch: ImageBatch): Promise<EngineOutput> {
    this.batches++;
    const n = batch.shape[0];
    const stride = batch.x.length / n;
    const values = new Float32Array(n * this.width);
    for (let r = 0; r < n; r++) values.fill(batch.x[r * stride]! / 255, r * this.width, (r + 1) * this.width);
    return { values, shape: [n, this.width] };
  }
  async dispose(): Promise<void> {
    this.disposed++;
  }
}

describe('imageFeed', () => {
  it('refuses a prefetch bound smaller than a batch with one line instead of stalling', () => {
    expect(() => imageFeed([], { bound: 3, batch: 4, size: SIDE }, (b) => b)).toThrow(/^the prefetch bound \(3 images\) is smaller than a batch \(4\): the feed would stall; raise --prefetch or lower --batch$/);
  });

  it('wires both ends: with the bound at one batch, an undecodable file gives its credit back and the feed does not stall', async () => {
    const dir = await temporaryDir();
    const broken = join(dir, 'broken.jpg');
    await writeFile(broken, 'not a jpeg');
    const good = await samplesOf(['bonsai', 'ketch'], 6);
    const samples = [good[0]!, { path: broken, label: 0 }, ...good.slice(1)];
    const skipped: string[] = [];
    const batches = await lastValueFrom(imageFeed(samples, { bound: 4, batch: 4, size: SIDE, onSkip: (s) => skipped.push(s.path) }, (b: Observable<ImageBatch>) => b).pipe(toArray()));
    expect(skipped).toEqual([broken]);
    expect(batches.map((b) => b.y.length)).toEqual([4, 4, 4]);
  });

  it('augments by the dataset-relative path: the same folder given two ways gives the same pixels', async () => {
    const samples = await samplesOf(['bonsai'], 2);
    const relative = (s: Sample) => ({ ...s, path: s.path.replace(`${FIXTURE_ROOT}/`, 'fixtures/caltech101-mini/101_ObjectCategories/') });
    const cwd = process.cwd();
    const pixels = (items: Sample[], root: string) =>
      lastValueFrom(imageFeed(items, { bound: 2, batch: 2, size: SIDE, prepare: 'augment', augment: { seed: 3, epoch: 1, root } }, (b) => b).pipe(toArray()));
    process.chdir(new URL('..', import.meta.url).pathname);
    try {
      const [a] = await pixels(samples, FIXTURE_ROOT);
      const [b] = await pixels(samples.map(relative), 'fixtures/caltech101-mini/101_ObjectCategories');
      expect(Buffer.from(a!.x).equals(Buffer.from(b!.x))).toBe(true);
    } finally {
      process.chdir(cwd);
    }
  });
});

describe('prepareData', () => {
  it('discovers, subsets and splits, with the manifest; nothing left to train on is one line', async () => {
    const prepared = await prepareData({ data: FIXTURE_ROOT, protocol: 'ratio:0.8', exclude: [], limit: 30, seed: 1 });
    expect(prepared.split.train.length + prepared.split.test.length).toBe(30);
    expect(prepared.manifest.train).toHaveLength(prepared.split.train.length);
    expect(prepared.manifest.train[0]![0]).not.toMatch(/^\//);
    await expect(prepareData({ data: FIXTURE_ROOT, protocol: 'per-class:50', exclude: [], seed: 1 })).rejects.toThrow(/^the split \(per-class:50\) left no training images$/);
  });
});

describe('FeatureStore', () => {
  it('computes missing features once with one engine for every view, then serves them from the cache', async () => {
    const root = await temporaryDir();
    const model = tinyClassifier();
    const samples = await samplesOf(['bonsai', 'ketch'], 3);
    const engines: CountingEngine[] = [];
    const store = () =>
      new FeatureStore(model, {
        root,
        resize: 'squash',
        decoder: 'auto',
        views: ['plain', 'mirror'],
        engine: async () => (engines.push(new CountingEngine(4)), engines.at(-1)!),
        feed: (items, view, consume) => imageFeed(items, { bound: 4, batch: 2, size: SIDE, prepare: view }, consume),
      });
    const first = store();
    const tables = await lastValueFrom(first.load(samples));
    expect(tables).toHaveLength(2);
    expect(tables.every((t) => t.size === samples.length)).toBe(true);
    expect(engines).toHaveLength(1);
    expect(engines[0]!.disposed).toBe(1);
    expect(first.cache.misses).toBe(2 * samples.length);
    const second = store();
    const again = await lastValueFrom(second.load(samples));
    expect(engines).toHaveLength(1); // nothing missing: no engine opened
    expect(second.cache.hits).toBe(2 * samples.length);
    // by path: a table's insertion order is the order reads and decodes happened to finish
    const firstValues = (table: ReadonlyMap<string, Float32Array>) => Object.fromEntries([...table].map(([path, f]) => [path, f[0]]));
    expect(firstValues(again[1]!)).toEqual(firstValues(tables[1]!));
    disposeClassifier(model);
  });

  it('featureBatches: views as rows to train, averaged to evaluate', () => {
    const samples = [{ path: 'a', label: 0 }, { path: 'b', label: 1 }, { path: 'c', label: 1 }];
    const plain = new Map([['a', Float32Array.of(1, 2)], ['b', Float32Array.of(3, 4)]]);
    const mirrored = new Map([['a', Float32Array.of(3, 4)], ['b', Float32Array.of(5, 6)]]);
    const rows = featureBatches(samples, [plain, mirrored], 3, 'rows');
    expect(rows.map((b) => b.paths)).toEqual([['a', 'a', 'b'], ['b']]);
    const mean = featureBatches(samples, [plain, mirrored], 3, 'mean');
    expect(Array.from(mean[0]!.features)).toEqual([2, 3, 4, 5]);
    expect(Array.from(mean[0]!.y)).toEqual([0, 1]);
  });
});

describe('epoch-end callbacks', () => {
  const record = (epoch: number, valLoss: number): EpochRecord => ({ epoch, loss: 1, top1: 0, valLoss, valTop1: 0, lr: 0.1, seconds: 0 });

  it('EarlyStopping stops once the validation loss has not improved for `patience` epochs; BestWeights restores the best', async () => {
    const model = tinyClassifier();
    const run = newRunState();
    const early = new EarlyStopping(2);
    const best = new BestWeights(model);
    const kernel = () => trainedVariables(model)[0]!;
    const losses = [1, 0.5, 0.7, 0.6];
    const seen: number[] = [];
    for (const [i, loss] of losses.entries()) {
      kernel().write(tf.fill(kernel().read().shape, i + 1) as tf.Tensor);
      recordEpoch(run, record(i + 1, loss));
      best.onEpochEnd(record(i + 1, loss), run);
      early.onEpochEnd(record(i + 1, loss), run);
      seen.push(Number(run.stoppedEarly));
    }
    expect(seen).toEqual([0, 0, 0, 1]);
    expect(run.best).toEqual({ epoch: 2, valLoss: 0.5 });
    const before = tf.memory().numTensors;
    expect(best.restore()).toBe(true);
    expect((await kernel().read().data())[0]).toBe(2);
    best.dispose();
    expect(tf.memory().numTensors).toBe(before - trainedVariables(model).length);
    disposeClassifier(model);
  });

  it('LearningRateSchedule sets the optimizer rate per epoch of its stage', () => {
    const optimizer = tf.train.adam(0.1);
    const schedule = new LearningRateSchedule(optimizer, { lr: 0.1, schedule: 'step', warmup: 0, epochs: 4, firstEpoch: 10 });
    const rates = [11, 12, 13, 14].map((epoch) => (schedule.onEpochBegin(epoch), (optimizer as unknown as { learningRate: number }).learningRate));
    expect(rates.map((r) => +r.toPrecision(3))).toEqual([0.1, 0.1, 0.01, 0.001]);
    optimizer.dispose();
  });

  it('Checkpointer saves weights, optimizer slots and the state, with no tensor left behind', async () => {
    const out = await temporaryDir();
    const model = tinyClassifier();
    const optimizer = tf.train.adam(0.1);
    const ctx: EpochContext = { model, source: (samples, _epoch, _training, step) => from(featureBatches(samples, [features], 2, 'rows')).pipe(step) };
    const samples = [{ path: 'a', label: 0 }, { path: 'b', label: 2 }];
    const features = new Map([['a', Float32Array.of(1, 0, 0, 1)], ['b', Float32Array.of(0, 1, 1, 0)]]);
    await lastValueFrom(trainEpoch(ctx, 1, samples, optimizer));
    const before = tf.memory().numTensors;
    const checkpointer = new Checkpointer(out, model, optimizer, null, (r) => ({ epoch: r.epoch }));
    await checkpointer.onEpochEnd(record(1, 0.3));
    expect(tf.memory().numTensors).toBe(before);
    const saved = (await loadCheckpoint<{ epoch: number }>(join(out, 'checkpoint')))!;
    expect(saved.state).toEqual({ epoch: 1 });
    expect(saved.tensors.weights).toHaveLength(trainedVariables(model).length);
    expect(saved.tensors.optimizer.length).toBeGreaterThan(1);
    tf.dispose([...saved.tensors.weights, ...saved.tensors.optimizer.map((s) => s.tensor)]);
    optimizer.dispose();
    disposeClassifier(model);
  });
});

describe('trainEpoch / evaluate', () => {
  it('train the head on feature batches and measure it, tensors flat', async () => {
    const model = tinyClassifier();
    const optimizer = tf.train.adam(0.05);
    const samples = Array.from({ length: 12 }, (_, i) => ({ path: `s${i}`, label: i % 3 }));
    const table = new Map(samples.map((s) => [s.path, Float32Array.from({ length: 4 }, (_, d) => (d === s.label ? 1 : 0))]));
    const progress: number[] = [];
    const ctx: EpochContext = { model, source: (items, _epoch, _training, step) => from(featureBatches(items, [table], 4, 'rows')).pipe(step), onProgress: (p) => progress.push(p.done) };
    await lastValueFrom(trainEpoch(ctx, 1, samples, optimizer)); // optimizer slots made
    const before = tf.memory().numTensors;
    let last = await lastValueFrom(evaluate(ctx, 1, samples));
    for (let epoch = 2; epoch <= 30; epoch++) await lastValueFrom(trainEpoch(ctx, epoch, samples, optimizer));
    last = await lastValueFrom(evaluate(ctx, 30, samples));
    expect(tf.memory().numTensors).toBe(before);
    expect(last.top1).toBe(1);
    expect(last.count).toBe(12);
    expect(progress.slice(0, 3)).toEqual([4, 8, 12]);
    optimizer.dispose();
    disposeClassifier(model);
  });
});

describe('fitStage', () => {
  it('runs a stage from where the run stands; early stopping ends it and puts the best epoch back; nothing leaks', async () => {
    const out = await temporaryDir();
    const model = tinyClassifier();
    const fit = Array.from({ length: 12 }, (_, i) => ({ path: `s${i}`, label: i % 3 }));
    // validated on the same features with other labels: the better the head fits, the worse "val" gets
    const evaluated = fit.map((s, i) => ({ path: s.path, label: (s.label + 1 + (i % 2)) % 3 }));
    const table = new Map(fit.map((s) => [s.path, Float32Array.from({ length: 4 }, (_, d) => (d === s.label ? 1 : 0))]));
    const ctx: EpochContext = { model, source: (items, _epoch, _training, step) => from(featureBatches(items, [table], 4, 'rows')).pipe(step) };
    const run = newRunState();
    const records: number[] = [];
    let restored: boolean | null = null;
    const before = tf.memory().numTensors;
    const stage = fitStage({
      plan: { name: 'train', epochs: 10, lr: 0.1, input: 'features', augment: false, tuneBackbone: false },
      span: { first: 0, last: 10 },
      run,
      index: 0,
      ctx,
      fit,
      evaluated,
      seed: 1,
      lrSchedule: 'constant',
      warmup: 0,
      patience: 2,
      train: {},
      out,
      state: (record) => ({ epoch: record.epoch }),
      resumed: null,
      onEpoch: (record) => records.push(record.epoch),
      onCheckpointer: () => {},
      onEnd: (restoredBest) => (restored = restoredBest),
    });
    await lastValueFrom(stage.pipe(toArray()));
    expect(tf.memory().numTensors).toBe(before);
    expect(run.stoppedEarly).toBe(true);
    expect(run.best!.epoch).toBe(1);
    expect(records).toEqual([1, 2, 3]);
    expect(restored).toBe(true);
    expect((await lastValueFrom(evaluate(ctx, 3, evaluated))).loss).toBeCloseTo(run.best!.valLoss, 5);
    const saved = (await loadCheckpoint<{ epoch: number }>(join(out, 'checkpoint')))!;
    expect(saved.state).toEqual({ epoch: 3 });
    tf.dispose([...saved.tensors.weights, ...saved.tensors.optimizer.map((s) => s.tensor), ...(saved.tensors.best ?? [])]);
    disposeClassifier(model);
  });
});

describe('fullPass', () => {
  it('runs the engine over test then train images, with the figures of each', async () => {
    const model = tinyClassifier();
    const engine = new CountingEngine(3);
    const data = { test: await samplesOf(['bonsai'], 2), train: await samplesOf(['bonsai', 'ketch'], 3) };
    const done: number[] = [];
    const pass = await lastValueFrom(
      fullPass(engine, data, { model, feed: (samples, consume) => imageFeed(samples, { bound: 4, batch: 4, size: SIDE }, consume), onProgress: (d) => done.push(d) }),
    );
    expect(pass.test.count).toBe(2);
    expect(pass.all.count).toBe(8);
    expect(pass.engine).toEqual({ name: 'counting', device: 'test', threads: 0 });
    expect(done.at(-1)).toBe(8);
    disposeClassifier(model);
  });
});

describe('engines', () => {
  it('the tfjs engine is normalize + predict on this thread; openEngine resolves workers: auto at run time', async () => {
    const model = tinyClassifier();
    const x = Uint8Array.from({ length: 2 * SIDE * SIDE * 3 }, (_, i) => (i * 7) % 256);
    const batch: ImageBatch = { x, shape: [2, SIDE, SIDE, 3], y: Int32Array.of(0, 1), paths: ['a', 'b'] };
    const engine = new TfjsEngine(model.backbone!, model.preprocessing);
    const before = tf.memory().numTensors;
    const out = await engine.run(batch);
    expect(tf.memory().numTensors).toBe(before);
    const want = tf.tidy(() => model.backbone!.predict(normalize(batch, 'unit')) as tf.Tensor);
    expect(Array.from(out.values)).toEqual(Array.from(await want.data()));
    want.dispose();
    expect(resolveWorkers('auto')).toBeGreaterThanOrEqual(1);
    expect(resolveWorkers(0)).toBe(0);
    const none = await openEngine(model.backbone!, { preprocessing: 'unit', workers: 0, engine: 'tfjs' });
    expect(none.name).toBe('tfjs');
    const auto = await openEngine(model.backbone!, { preprocessing: 'unit', workers: 0 });
    expect([auto.name, auto.device]).toEqual(['onnxruntime', 'cpu']);
    const fast = await auto.run(batch);
    expect(fast.shape).toEqual(out.shape);
    fast.values.forEach((v, i) => expect(v).toBeCloseTo(out.values[i]!, 4));
    await auto.dispose();
    await expect(openEngine(model.backbone!, { preprocessing: 'unit', workers: 0, engine: 'onnx' as 'tfjs' })).rejects.toThrow(/^unknown engine 'onnx'; valid: auto, onnxruntime, tfjs$/);
    disposeClassifier(model);
  });

  it('auto falls back to tfjs with one line when the network does not export; onnxruntime asked for by name refuses', async () => {
    const input = tfl.input({ shape: [SIDE, SIDE, 3] });
    const up = tfl.layers.upSampling2d({ size: [2, 2], name: 'up' }).apply(input) as tfl.SymbolicTensor;
    const network = tfl.model({ inputs: input, outputs: tfl.layers.globalAveragePooling2d({}).apply(up) as tfl.SymbolicTensor });
    const notices: string[] = [];
    const engine = await openEngine(network, { preprocessing: 'unit', workers: 0, onNotice: (line) => notices.push(line) });
    expect(engine.name).toBe('tfjs');
    expect(notices).toEqual([expect.stringMatching(/^engine: tfjs \(ONNX Runtime not used: layer 'up' \(UpSampling2D\) is not supported by the ONNX export\)$/)]);
    await expect(openEngine(network, { preprocessing: 'unit', workers: 0, engine: 'onnxruntime' })).rejects.toThrow(/^layer 'up' \(UpSampling2D\) is not supported/);
    network.dispose();
  });

  it('predict checks the network output width against the classifier classes (one line)', async () => {
    const model = tinyClassifier();
    const batch: ImageBatch = { x: new Uint8Array(SIDE * SIDE * 3), shape: [1, SIDE, SIDE, 3], y: Int32Array.of(0), paths: ['a'] };
    await expect(lastValueFrom(of(batch).pipe(predict(model, new CountingEngine(5))))).rejects.toThrow(/^predict: the network gives 5 outputs per image, the classifier has 3 classes$/);
    const wrongHead: Classifier = { ...model, head: denseHead(4, 4, { seed: 1 }) };
    await expect(lastValueFrom(of<FeatureBatch>({ features: new Float32Array(4), shape: [1, 4], y: Int32Array.of(0), paths: ['a'] }).pipe(predict(wrongHead)))).rejects.toThrow(/^predict: the network gives 4 outputs per image, the classifier has 3 classes$/);
    wrongHead.head.dispose();
    disposeClassifier(model);
  });
});

describe('planStages', () => {
  const base = { epochs: 4, lr: 0.01, cache: true, augment: true };
  it('one stage on cached features, on images, or the head then fine-tuning at a lower rate', () => {
    expect(planStages(base, { backbone: {} as never }).map((s) => [s.name, s.input, s.tuneBackbone])).toEqual([['train', 'features', false]]);
    expect(planStages({ ...base, cache: false }, { backbone: {} as never })[0]).toMatchObject({ input: 'images', augment: true });
    expect(planStages({ ...base, fineTune: 2 }, { backbone: {} as never })).toMatchObject([{ name: 'train', input: 'images', tuneBackbone: true }]);
    const two = planStages({ ...base, fineTune: 2, fineTuneEpochs: 3 }, { backbone: {} as never });
    expect(two).toMatchObject([{ name: 'head', epochs: 4, lr: 0.01, input: 'features', tuneBackbone: false }, { name: 'fine-tune', epochs: 3, lr: 0.001, input: 'images', augment: true, tuneBackbone: true }]);
    expect(stageEpochs(two, 1)).toEqual({ first: 4, last: 7 });
    // no early stopping unless asked; --patience covers every stage, --fine-tune-patience only the second
    expect(two.map((s) => s.patience)).toEqual([undefined, undefined]);
    expect(planStages({ ...base, fineTune: 2, fineTuneEpochs: 3, patience: 5 }, { backbone: {} as never }).map((s) => s.patience)).toEqual([5, 5]);
    expect(planStages({ ...base, fineTune: 2, fineTuneEpochs: 3, fineTunePatience: 2 }, { backbone: {} as never }).map((s) => s.patience)).toEqual([undefined, 2]);
    expect(planStages({ ...base, patience: 3 }, { backbone: {} as never })[0]!.patience).toBe(3);
    expect(() => planStages({ ...base, fineTuneEpochs: 3 }, { backbone: null })).toThrow(/^--fine-tune-epochs needs --fine-tune N/);
  });
});

