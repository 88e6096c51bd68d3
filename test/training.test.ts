import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { lastValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { CHECKPOINT_DIR, MODEL_DIR, PARTIAL_REPORT, RunInterrupted, type CheckpointState } from '../src/graphs/experiment.js';
import { experiment, getGraph, type ExperimentOptions } from '../src/graphs/index.js';
import { loadModel } from '../src/models/persistence.js';
import { cacheDir } from '../src/models/weights.js';
import type { Report } from '../src/report.js';
import { loadCheckpoint, optimizerSlots, restoreOptimizer, saveCheckpoint } from '../src/training/checkpoint.js';
import { learningRate } from '../src/training/schedule.js';
import { holdOut } from '../src/training/validation.js';
import { FIXTURE_ROOT, temporaryDir } from './helpers.js';

describe('learning-rate schedules', () => {
  const over = (schedule: 'constant' | 'cosine' | 'step', warmup = 0) => Array.from({ length: 8 }, (_, i) => learningRate(0.1, schedule, i + 1, 8, warmup));

  it('constant keeps the base rate; warm-up ramps up to it linearly first', () => {
    expect(over('constant')).toEqual(Array(8).fill(0.1));
    const warm = over('constant', 3);
    expect(warm.slice(0, 3).map((x) => x.toFixed(4))).toEqual(['0.0250', '0.0500', '0.0750']);
    expect(warm.slice(3)).toEqual(Array(5).fill(0.1));
  });

  it('cosine starts at the base rate and falls every epoch without reaching 0; step divides by 10 at 1/2 and 3/4', () => {
    const cosine = over('cosine');
    expect(cosine[0]).toBe(0.1);
    for (let i = 1; i < 8; i++) expect(cosine[i]).toBeLessThan(cosine[i - 1]!);
    expect(cosine[7]).toBeGreaterThan(0);
    expect(over('step').map((x) => +x.toPrecision(3))).toEqual([0.1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001]);
  });
});

describe('validation split', () => {
  const train = Array.from({ length: 3 }, (_, label) => Array.from({ length: 10 * (label + 1) }, (_, i) => ({ path: `${label}/${i}.jpg`, label }))).flat();

  it('holds out a seeded, stratified fraction of each class, disjoint from what trains', () => {
    const { fit, validation } = holdOut(train, 0.2, 7);
    expect(validation.filter((s) => s.label === 0)).toHaveLength(2);
    expect(validation.filter((s) => s.label === 2)).toHaveLength(6);
    expect(fit.length + validation.length).toBe(train.length);
    expect(new Set([...fit, ...validation].map((s) => s.path)).size).toBe(train.length);
    expect(holdOut(train, 0.2, 7)).toEqual({ fit, validation });
    expect(holdOut(train, 0.2, 8).validation).not.toEqual(validation);
    expect(holdOut([{ path: 'only.jpg', label: 0 }], 0.5, 0).validation).toEqual([]);
  });
});

describe('checkpoints', () => {
  it('round-trip weights, optimizer slots and state; a damaged tensor file is refused, not trusted', async () => {
    const root = await temporaryDir();
    const weights = [tf.tensor2d([[1, 2], [3, 4]]), tf.tensor1d([5, 6])];
    const slots = [{ name: 'iter', tensor: tf.scalar(7, 'int32') }, { name: 'm', tensor: tf.tensor1d([0.5]) }];
    await saveCheckpoint(root, 1, { note: 'first' }, { weights, optimizer: slots, best: null });
    await saveCheckpoint(root, 2, { note: 'second' }, { weights, optimizer: slots, best: [weights[1]!] });
    const loaded = (await loadCheckpoint<{ note: string }>(root))!;
    expect(loaded.state).toEqual({ note: 'second' });
    expect(loaded.dir).toBe(join(root, 'epoch-0002'));
    expect(loaded.tensors.weights.map((t) => Array.from(t.dataSync()))).toEqual([[1, 2, 3, 4], [5, 6]]);
    expect(loaded.tensors.weights[0]!.shape).toEqual([2, 2]);
    expect(loaded.tensors.optimizer.map((s) => [s.name, s.tensor.dtype, Array.from(s.tensor.dataSync())])).toEqual([['iter', 'int32', [7]], ['m', 'float32', [0.5]]]);
    expect(Array.from(loaded.tensors.best![0]!.dataSync())).toEqual([5, 6]);
    // only the latest checkpoint is kept
    await expect(readFile(join(root, 'epoch-0001/state.json'))).rejects.toThrow();

    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(root, 'epoch-0002/tensors.bin'), new Uint8Array(10));
    await expect(loadCheckpoint(root)).rejects.toThrow(/checkpoint .*epoch-0002 is damaged: tensors.bin has 10 bytes, expected \d+/);
    expect(await loadCheckpoint(await temporaryDir())).toBeNull();
    [...weights, ...slots.map((s) => s.tensor), ...loaded.tensors.weights, ...loaded.tensors.optimizer.map((s) => s.tensor), ...loaded.tensors.best!].forEach((t) => t.dispose());
  });
});

/** A small real run on the embedded photos: cached MobileNetV2 features, a few epochs in seconds. */
const small = (out: string, more: Partial<ExperimentOptions> = {}) =>
  ({ data: FIXTURE_ROOT, limit: 60, imageSize: 64, epochs: 4, lr: 0.01, out, ...more }) satisfies Partial<ExperimentOptions>;

const summary = (r: Report) => ({ metrics: r.metrics, history: r.history.map(({ seconds: _, ...rest }) => rest), training: { ...r.training, resumedAfterEpoch: null, stages: r.training.stages.map(({ seconds: _, ...rest }) => rest) } });

describe('optimizer state', () => {
  it.each([2, 3, 7, 60])('restores Adam bit for bit after %i steps: the next steps equal an uninterrupted optimizer\'s', async (done) => {
    const before = tf.memory().numTensors;
    const start = tf.tensor1d([0.3, -1.2, 2.5]);
    const steps = (optimizer: tf.Optimizer, x: tf.Variable, n: number) => {
      for (let i = 0; i < n; i++) optimizer.minimize(() => tf.sum(tf.mul(tf.sin(x), tf.tensor1d([1.5, -0.7, 0.2]))), false, [x]);
    };
    const x = tf.variable(start);
    const uninterrupted = tf.train.adam(0.05);
    steps(uninterrupted, x, done);
    const slots = await optimizerSlots(uninterrupted);
    const saved = slots.map(({ name, tensor }) => ({ name, tensor: tensor.clone() }));
    slots[0]!.tensor.dispose(); // the iteration count is a fresh scalar
    const y = tf.variable(x);
    const resumed = tf.train.adam(0.05);
    await restoreOptimizer(resumed, saved);
    steps(uninterrupted, x, 40);
    steps(resumed, y, 40);
    expect(Array.from(await y.data())).toEqual(Array.from(await x.data()));
    [start, x, y, ...saved.map((s) => s.tensor)].forEach((t) => t.dispose());
    uninterrupted.dispose();
    resumed.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('early stopping', () => {
  it('stops when the validation loss stops improving, keeps the test images out of it, and restores the best epoch', async () => {
    const out = join(await temporaryDir(), 'run');
    const before = tf.memory().numTensors;
    // a high learning rate on few images overfits within a few epochs
    const report = await lastValueFrom(experiment(getGraph('mobilenetv2'), small(out, { limit: 120, epochs: 12, lr: 0.1, patience: 2 })));
    expect(tf.memory().numTensors).toBe(before);
    const t = report.training;
    expect(t).toMatchObject({ epochsPlanned: 12, stoppedEarly: true, restoredBest: true, validation: 'held-out training images', patience: 2 });
    expect(t.epochsRun).toBeLessThan(12);
    expect(t.epochsRun - t.bestEpoch).toBe(2);
    const losses = report.history.map((h) => h.valLoss);
    expect(Math.min(...losses)).toBe(losses[t.bestEpoch - 1]);
    // 10% of each class's training images validate; the test images are untouched
    expect(t.validationImages).toBe(10);
    expect(report.dataset.train + report.dataset.test).toBe(120);
    expect(report.operators['train']!.items).toBe(t.epochsRun * (report.dataset.train - 10));
    // the saved model carries the best epoch's head, as kept in the checkpoint
    const checkpoint = (await loadCheckpoint<CheckpointState>(join(out, CHECKPOINT_DIR)))!;
    const { model } = await loadModel(join(out, MODEL_DIR));
    const head = model.getLayer('head').getWeights();
    checkpoint.tensors.best!.forEach((best, i) => expect(Array.from(head[i]!.dataSync())).toEqual(Array.from(best.dataSync())));
    const last = checkpoint.tensors.weights;
    expect(Array.from(last[0]!.dataSync())).not.toEqual(Array.from(head[0]!.dataSync()));
    model.dispose();
    [...checkpoint.tensors.weights, ...checkpoint.tensors.optimizer.map((s) => s.tensor), ...checkpoint.tensors.best!].forEach((x) => x.dispose());
  });
});

describe('resume', () => {
  it('a run stopped after epoch 2 and resumed ends with the same metrics as a run never stopped', async () => {
    const dir = await temporaryDir();
    const options = { lrSchedule: 'cosine', warmup: 1, classWeights: 'balanced', l2: 1e-3 } as const;
    const whole = await lastValueFrom(experiment(getGraph('mobilenetv2'), small(join(dir, 'whole'), options)));

    const out = join(dir, 'stopped');
    const stop = new AbortController();
    const stopped = lastValueFrom(experiment(getGraph('mobilenetv2'), small(out, options), { signal: stop.signal, onEpoch: (h) => h.epoch === 2 && stop.abort('SIGINT') }));
    await expect(stopped).rejects.toThrow(RunInterrupted);
    const partial = JSON.parse(await readFile(join(out, PARTIAL_REPORT), 'utf8'));
    expect(partial).toMatchObject({ status: 'interrupted', reason: 'SIGINT', epochsDone: 2, epochsPlanned: 4, checkpoint: join(out, CHECKPOINT_DIR) });
    expect(partial.history.map((h: { epoch: number }) => h.epoch)).toEqual([1, 2]);
    await expect(readFile(join(out, 'report.json'))).rejects.toThrow();

    const before = tf.memory().numTensors;
    const resumed = await lastValueFrom(experiment(getGraph('mobilenetv2'), { ...small(out, options), resume: true }));
    expect(tf.memory().numTensors).toBe(before);
    expect(resumed.training.resumedAfterEpoch).toBe(2);
    expect(summary(resumed)).toEqual(summary(whole));
    await expect(readFile(join(out, PARTIAL_REPORT))).rejects.toThrow();
  });

  it('an interruption during feature extraction stops it: nothing leaks and nothing more is written', async () => {
    const dir = await temporaryDir();
    const out = join(dir, 'run');
    const before = tf.memory().numTensors;
    const cached = async () => (await readdir(join(cacheDir(), 'features'), { recursive: true }).catch(() => [])).filter((f) => f.endsWith('.f32')).length;
    const earlier = await cached(); // other tests' entries
    const stop = new AbortController();
    // an input size no other test uses, so every feature is computed here
    const run = experiment(getGraph('mobilenetv2'), { ...small(out), limit: 120, batch: 8, imageSize: 48 }, { signal: stop.signal, onProgress: (p) => p.phase === 'features' && p.done >= 16 && stop.abort('SIGINT') });
    await expect(lastValueFrom(run)).rejects.toThrow(/interrupted \(SIGINT\) after 0 finished epoch/);
    const pause = () => new Promise((r) => setTimeout(r, 1000));
    const atStop = await cached();
    await pause();
    const settled = await cached();
    // the batch in flight may finish writing (8 images), nothing after it
    expect(settled - atStop).toBeLessThanOrEqual(8);
    await pause();
    expect(await cached()).toBe(settled);
    expect(settled - earlier).toBeLessThan(120);
    expect(tf.memory().numTensors).toBe(before);
    expect(JSON.parse(await readFile(join(out, PARTIAL_REPORT), 'utf8'))).toMatchObject({ epochsDone: 0, checkpoint: null });
  });

  it('refuses to resume on a different split', async () => {
    const out = join(await temporaryDir(), 'run');
    const stop = new AbortController();
    await expect(lastValueFrom(experiment(getGraph('mobilenetv2'), small(out), { signal: stop.signal, onEpoch: () => stop.abort('SIGTERM') }))).rejects.toThrow(/interrupted \(SIGTERM\) after 1 finished epoch/);
    await expect(lastValueFrom(experiment(getGraph('mobilenetv2'), { ...small(out), seed: 1, resume: true }))).rejects.toThrow(/the dataset or split differs from the one the checkpoint in .* was trained on/);
  });
});
