import { rmSync } from 'node:fs';
import { cp, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { lastValueFrom } from 'rxjs';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { parseCompareCommandLine } from '../src/cli/compare.js';
import type { ComparedReport, Comparison } from '../src/compare/comparison.js';
import { mostConfused } from '../src/compare/confusion.js';
import { historyCsv } from '../src/compare/csv.js';
import { plotsOf } from '../src/compare/html.js';
import { confusionSpec, renderPlot } from '../src/compare/plots.js';
import { compare, loadCompareRequest } from '../src/compare/run.js';
import { RunInterrupted } from '../src/graphs/experiment.js';
import { splitDifference } from '../src/compare/same-split.js';
import { summarize } from '../src/compare/summary.js';
import { bestEpochOf, rowOf } from '../src/compare/table.js';
import { embeddedWeights, localWeightsFile } from '../src/models/weights.js';
import { createModel, disposeClassifier, getModel } from '../src/models/index.js';
import type { Manifest } from '../src/operators/split.js';
import { mobileNetV2 } from '../src/models/mobilenetv2.js';
import { writeKerasH5 } from './h5-writer.js';
import { FIXTURE_ROOT, fixtureImages, temporaryDir } from './helpers.js';

/** A report with the figures a comparison reads; the rest as a run would leave it. */
function report(model: string, figures: { meanPerClass: number; imagesPerSecond: number; params: number; bytes?: number; valLosses?: number[] }): ComparedReport {
  const valLosses = figures.valLosses ?? [1, 0.5];
  return {
    graph: model,
    model,
    weights: 'imagenet',
    backend: 'wasm',
    protocol: 'ratio:0.8',
    seed: 0,
    dataset: { root: '/d', testRoot: '/d', classes: 2, classNames: ['a', 'b'], train: 8, test: 2, skipped: 0, skippedByReason: {}, skippedFiles: [], shortClasses: [] },
    metrics: { top1: figures.meanPerClass, top5: 1, meanPerClass: figures.meanPerClass, loss: 0.5, studyAverage: 0.9, perClass: {}, confusion: [[1, 0], [0, 1]] },
    history: valLosses.map((valLoss, i) => ({ epoch: i + 1, loss: 1, top1: 0.5, valLoss, valTop1: 0.5, seconds: 1 })),
    speed: { batch: 32, images: 10, imagesPerSecond: figures.imagesPerSecond, fullPassSeconds: 10 / figures.imagesPerSecond, engine: { name: 'tfjs', device: 'wasm', threads: 1 } },
    size: { params: figures.params, bytes: figures.bytes ?? 4 * figures.params },
    features: { cached: true, augmentation: 'off', dir: null, hits: 0, misses: 0, corrupt: 0 },
    operators: {},
    options: {},
    startedAt: '2026-01-01T00:00:00.000Z',
    seconds: 1,
  };
}

describe('comparison table', () => {
  it('names the most accurate, fastest and smallest models and the trade-off between them', () => {
    const rows = [
      rowOf('big', report('big', { meanPerClass: 0.9, imagesPerSecond: 10, params: 3_000_000, bytes: 12_500_000 })),
      rowOf('quick', report('quick', { meanPerClass: 0.8, imagesPerSecond: 40, params: 1_000_000, bytes: 4_100_000 })),
      rowOf('tiny', report('tiny', { meanPerClass: 0.7, imagesPerSecond: 30, params: 200_000 })),
    ];
    expect(rows.map((r) => r.size.estimated)).toEqual([false, false, true]);
    const summary = summarize(rows);
    expect(summary).toMatchObject({ mostAccurate: ['big'], fastest: ['quick'], smallest: ['tiny'], frontier: ['quick', 'big'] });
    expect(summary.text).toBe(
      'Most accurate (mean per-class test accuracy): big, 90.0%. Fastest: quick, 40.0 images/s (full pass 0.3 s). Smallest: tiny, 0.8 MB (estimated from parameters). ' +
        'Trade-off: quick runs 4.0× as fast as big for 10.0 points less mean per-class accuracy. tiny is no better than quick on accuracy or speed.',
    );
  });

  it('calls equal accuracies a tie and a model best on both a case without trade-off', () => {
    const rows = [rowOf('a', report('a', { meanPerClass: 1, imagesPerSecond: 50, params: 10 })), rowOf('b', report('b', { meanPerClass: 1, imagesPerSecond: 20, params: 5 }))];
    const summary = summarize(rows);
    expect(summary.mostAccurate).toEqual(['a', 'b']);
    expect(summary.text).toContain('Most accurate (mean per-class test accuracy): a and b (tied), 100.0%.');
    expect(summary.text).toContain('a is both the most accurate and the fastest: no trade-off.');
  });

  it('takes epochs and the best epoch from the training record, else from the lowest validation loss', () => {
    const plain = report('m', { meanPerClass: 1, imagesPerSecond: 1, params: 1, valLosses: [0.9, 0.4, 0.6] });
    expect(bestEpochOf(plain)).toEqual({ best: 2, bestBy: 'lowest validation loss' });
    expect(rowOf('m', plain).epochs).toEqual({ run: 3, planned: null, best: 2, bestBy: 'lowest validation loss', stoppedEarly: null, validation: 'test images' });
    const trained = { ...plain, training: { epochsPlanned: 10, epochsRun: 3, bestEpoch: 3, stoppedEarly: true, validation: 'held-out training images' as const } };
    expect(rowOf('m', trained).epochs).toEqual({ run: 3, planned: 10, best: 3, bestBy: 'training', stoppedEarly: true, validation: 'held-out training images' });
  });

  it('lists the most confused class pairs, most images first, with the share of the true class', () => {
    const names = ['cat', 'dog', 'fox'];
    const pairs = mostConfused(
      [
        [5, 3, 2],
        [1, 9, 0],
        [0, 3, 1],
      ],
      names,
      3,
    );
    expect(pairs).toEqual([
      { actual: 'fox', predicted: 'dog', count: 3, shareOfActual: 0.75 },
      { actual: 'cat', predicted: 'dog', count: 3, shareOfActual: 0.3 },
      { actual: 'cat', predicted: 'fox', count: 2, shareOfActual: 0.2 },
    ]);
  });

  it('writes the per-epoch log with the columns of the study\'s exports, and lr when recorded', () => {
    const history = report('m', { meanPerClass: 1, imagesPerSecond: 1, params: 1 }).history;
    expect(historyCsv(history)).toBe('epoch,loss,accuracy,val_loss,val_accuracy\n1,1,0.5,1,0.5\n2,1,0.5,0.5,0.5\n');
    expect(historyCsv(history.map((h) => ({ ...h, lr: 0.001 }))).split('\n')[0]).toBe('epoch,loss,accuracy,val_loss,val_accuracy,lr');
  });
});

describe('confusion heatmap', () => {
  it('stays readable for 257 classes: one tooltip per non-empty cell, every 4th class named, a bounded image', async () => {
    const names = Array.from({ length: 257 }, (_, i) => `${String(i + 1).padStart(3, '0')}.class`);
    const confusion = names.map((_, r) => names.map((_, c) => (r === c ? 20 : (r * 7 + c) % 50 === 0 ? 2 : 0)));
    const nonEmpty = confusion.flat().filter((n) => n > 0).length;
    const dir = await temporaryDir();
    const plot = await renderPlot(confusionSpec('m', names, confusion), dir, 'big', 'big');
    const svg = await readFile(join(dir, plot.svg), 'utf8');
    expect(svg.match(/<title>/g)).toHaveLength(nonEmpty);
    expect(svg).toContain('>005.class<');
    expect(svg).not.toContain('>002.class<');
    const png = await sharp(join(dir, plot.png)).metadata();
    expect(png.width).toBeLessThan(2400);
    expect(png.height).toBeLessThan(2400);
  });
});

describe('same split', () => {
  const manifest: Manifest = { protocol: 'ratio:0.8', seed: 0, roots: { train: '/d', test: '/d' }, classes: ['a', 'b'], train: [['a/1.jpg', 0], ['b/1.jpg', 1]], test: [['a/2.jpg', 0]], shortClasses: [] };
  it('finds no difference between equal splits and names the first one otherwise', () => {
    expect(splitDifference(manifest, structuredClone(manifest))).toBeNull();
    expect(splitDifference(manifest, { ...manifest, seed: 1 })).toBe('seed 0 vs 1');
    expect(splitDifference(manifest, { ...manifest, train: [['a/1.jpg', 0], ['b/9.jpg', 1]] })).toBe('training images: 2 vs 2 files, first difference at #2: b/1.jpg vs b/9.jpg');
    expect(splitDifference(manifest, { ...manifest, test: [] })).toBe('test images: 1 vs 0 files, first difference at #1: a/2.jpg vs (none)');
  });
});

describe('weights from a folder (--weights-dir)', () => {
  const file = 'mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5';

  it("finds a model's published ImageNet file in the folder first, and nothing for a model whose file it lacks", async () => {
    const dir = await temporaryDir();
    await cp(embeddedWeights(file), join(dir, file));
    const mobilenetv2 = getModel('mobilenetv2');
    expect(await localWeightsFile(mobilenetv2.imagenet({ alpha: 0.5, inputSize: 224 }), dir)).toBe(join(dir, file));
    expect(await localWeightsFile(mobilenetv2.imagenet({ alpha: 0.5, inputSize: 224 }))).toBe(embeddedWeights(file));
    expect(await localWeightsFile(mobilenetv2.imagenet({ alpha: 0.35, inputSize: 224 }), dir)).toBeNull();
    expect(await localWeightsFile(getModel('squeezenet').imagenet({ alpha: 1, inputSize: 227 }), dir)).toBeNull();
  });

  it('loads weights from the folder ahead of the embedded copy; only the published file (by hash) is labelled imagenet', async () => {
    const dir = await temporaryDir();
    await writeFile(join(dir, file), 'not an HDF5 file');
    await expect(createModel('mobilenetv2', { classes: 2, inputSize: 32, weightsDir: dir })).rejects.toThrow(`${join(dir, file)}: not an HDF5 file`);
    // same name, other weights: loaded, but named by its path, so it never shares the ImageNet feature cache
    const other = mobileNetV2({ alpha: 0.5, inputSize: 32, includeTop: false, classes: 0, pooling: 'avg' });
    await writeKerasH5(other, join(dir, file));
    other.dispose();
    const impostor = await createModel('mobilenetv2', { classes: 2, inputSize: 32, weightsDir: dir });
    expect(impostor.weights).toBe(join(dir, file));
    disposeClassifier(impostor);
    await cp(embeddedWeights(file), join(dir, file));
    const model = await createModel('mobilenetv2', { classes: 2, inputSize: 32, weightsDir: dir });
    expect(model.weights).toBe(`imagenet (${file})`);
    disposeClassifier(model);
  });
});

describe('npm run compare arguments', () => {
  it('takes graphs and the graph flags (--weights-dir as an absolute path), and refuses bad ones in one line', () => {
    const parsed = parseCompareCommandLine(['mobilenetv2', 'squeezenet', '--epochs', '2', '--seed', '3', '--weights-dir', 'w', '--out', 'o']);
    expect(parsed).toMatchObject({ graphs: ['mobilenetv2', 'squeezenet'], out: 'o', flags: { backend: 'auto', options: { epochs: 2, seed: 3, weightsDir: resolve('w') } } });
    expect(() => parseCompareCommandLine(['mobilenetv2'])).toThrow(/^name at least two graphs to compare: /);
    expect(() => parseCompareCommandLine(['mobilenetv2', 'resnet'])).toThrow(/^unknown graph 'resnet'; known graphs: /);
    expect(() => parseCompareCommandLine(['mobilenetv2', 'squeezenet', '--colour'])).toThrow(/^unknown or malformed flag --colour; valid flags: .*--weights-dir/);
    expect(() => parseCompareCommandLine(['mobilenetv2', 'squeezenet', '--epochs', '0'])).toThrow(/^--epochs expects a positive whole number, got '0'$/);
  });
});

const TINY = { limit: 20, epochs: 2, imageSize: 32, weights: 'none' } as const;

describe('compare', () => {
  it('runs every model on one split and writes the table, CSVs, plots and index.html', async () => {
    const out = join(await temporaryDir(), 'cmp');
    const before = tf.memory().numTensors;
    const comparison = await lastValueFrom(compare({ graphs: ['mobilenetv2', 'mobilenetv1'], options: { data: FIXTURE_ROOT, ...TINY }, out }));
    expect(tf.memory().numTensors).toBe(before);

    const saved = JSON.parse(await readFile(join(out, 'compare.json'), 'utf8')) as Comparison;
    expect(saved).toEqual(JSON.parse(JSON.stringify(comparison)));
    expect(saved.split).toMatchObject({ manifest: 'manifest.json', protocol: 'ratio:0.8', seed: 0, root: FIXTURE_ROOT, classes: 10 });
    expect(saved.split.train + saved.split.test).toBe(20);
    expect(saved.models.map((m) => [m.graph, m.model])).toEqual([
      ['mobilenetv2', 'mobilenetv2_050'],
      ['mobilenetv1', 'mobilenetv1_025'],
    ]);
    for (const m of saved.models) {
      for (const key of ['top1', 'top5', 'meanPerClass', 'studyAverage'] as const) expect(m[key], key).toBeGreaterThanOrEqual(0);
      expect(m.params).toBeGreaterThan(100_000);
      expect(m.size.megabytes).toBeCloseTo(m.size.bytes / 1e6, 9);
      expect(m.speed).toMatchObject({ batch: 32, images: 20 });
      expect(m.speed.imagesPerSecond).toBeCloseTo(20 / m.speed.fullPassSeconds, 6);
      expect(m.epochs.run).toBe(2);
      expect([1, 2]).toContain(m.epochs.best);
    }
    const top = (key: (m: Comparison['models'][number]) => number) => saved.models.reduce((a, b) => (key(b) > key(a) ? b : a));
    expect(saved.summary.mostAccurate).toContain(top((m) => Math.round(1000 * m.meanPerClass)).graph);
    expect(saved.summary.fastest).toEqual([top((m) => m.speed.imagesPerSecond).graph]);
    expect(saved.summary.smallest).toEqual([top((m) => -m.size.bytes).graph]);
    expect(saved.summary.text).toContain(`Fastest: ${top((m) => m.speed.imagesPerSecond).model},`);

    // one manifest, at the top
    const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as Manifest;
    expect(manifest.train.length + manifest.test.length).toBe(20);
    expect((await readdir(join(out, 'mobilenetv2'))).includes('manifest.json')).toBe(false);

    for (const d of saved.details) {
      const csv = (await readFile(join(out, d.csv), 'utf8')).trim().split('\n');
      expect(csv[0]).toMatch(/^epoch,loss,accuracy,val_loss,val_accuracy(,lr)?$/);
      expect(csv.slice(1).map((line) => line.split(',')[0])).toEqual(['1', '2']);
      expect(Number(csv[2]!.split(',')[4])).toBe(d.history[1]!.valTop1);
      expect((await stat(join(out, d.report))).size).toBeGreaterThan(0);
    }
    const plots = plotsOf(saved);
    expect(plots).toHaveLength(1 + 2 * 2);
    for (const plot of plots) {
      const svg = await sharp(join(out, plot.svg)).metadata();
      expect(svg.format, plot.svg).toBe('svg');
      const png = await sharp(join(out, plot.png)).metadata();
      expect(png.format, plot.png).toBe('png');
      expect(png.width).toBeGreaterThan(200);
      expect(png.height).toBeGreaterThan(100);
    }
    const confusion = await readFile(join(out, saved.details[0]!.plots.confusion.svg), 'utf8');
    expect(confusion.match(/<title>[^<]+ → [^<]+: \d+ images? \(/g)?.length).toBeGreaterThan(0);

    const markdown = await readFile(join(out, 'compare.md'), 'utf8');
    expect(markdown).toContain('| model | params | size (MB) | top-1 | top-5 | mean per-class | study "average" † | full pass (s) | images/s | backend | epochs run | best epoch |');
    expect(markdown).toContain(saved.summary.text);
    const page = await readFile(join(out, 'index.html'), 'utf8');
    expect(page.match(/<figure class="plot"[^>]*><svg /g)).toHaveLength(plots.length);
    expect(page.match(/<tr><td>/g)?.length).toBeGreaterThanOrEqual(2);
    expect(page).not.toMatch(/<(script|img|link)\b/);
  });

  it('prepares the data once and hands every model that split: a file removed in between is a counted skip, not another split', async () => {
    const dir = await temporaryDir();
    const data = join(dir, 'data');
    for (const cls of ['bonsai', 'ketch', 'watch']) {
      await mkdir(join(data, cls), { recursive: true });
      for (const photo of (await fixtureImages(cls)).slice(0, 5)) await cp(photo, join(data, cls, photo.split('/').pop()!));
    }
    const removed = join(data, 'watch', (await readdir(join(data, 'watch'))).sort()[0]!);
    const run = compare({ graphs: ['mobilenetv2', 'mobilenetv1'], options: { data, epochs: 1, imageSize: 32, weights: 'none' }, out: join(dir, 'cmp') }, { onRunDone: () => rmSync(removed, { force: true }) });
    const comparison = await lastValueFrom(run);
    const kept = JSON.parse(await readFile(join(dir, 'cmp/manifest.json'), 'utf8')) as Manifest;
    expect(kept.train.length + kept.test.length).toBe(15);
    const second = JSON.parse(await readFile(join(dir, 'cmp/mobilenetv1/report.json'), 'utf8')) as ComparedReport;
    expect(second.dataset.train + second.dataset.test).toBe(15);
    expect(second.dataset.skippedFiles.map((s) => s.path)).toEqual([removed]);
    expect(comparison.models).toHaveLength(2);
  });

  it('compare --resume continues an interrupted comparison: finished models kept, the interrupted one resumed from its checkpoint', async () => {
    const out = join(await temporaryDir(), 'cmp');
    const stop = new AbortController();
    let current = '';
    const first = compare(
      { graphs: ['mobilenetv2', 'mobilenetv1'], options: { data: FIXTURE_ROOT, ...TINY }, out },
      { signal: stop.signal, onRun: (graph) => (current = graph), onEpoch: (record) => current === 'mobilenetv1' && record.epoch === 1 && stop.abort('SIGINT') },
    );
    const error = await lastValueFrom(first).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RunInterrupted);
    expect((error as RunInterrupted).resume).toBe(`npm run compare -- --resume ${JSON.stringify(out)}`);
    const finished = await readFile(join(out, 'mobilenetv2/report.json'), 'utf8');

    expect(parseCompareCommandLine(['--resume', out])).toMatchObject({ out, resume: true });
    expect(() => parseCompareCommandLine(['--resume', out, '--epochs', '3'])).toThrow(/^--resume continues a comparison with its own graphs and options; drop --epochs$/);
    const ran: string[] = [];
    const comparison = await lastValueFrom(compare(await loadCompareRequest(out), { onRun: (graph) => ran.push(graph) }));
    expect(ran).toEqual(['mobilenetv1']);
    expect(await readFile(join(out, 'mobilenetv2/report.json'), 'utf8')).toBe(finished);
    const resumed = JSON.parse(await readFile(join(out, 'mobilenetv1/report.json'), 'utf8')) as ComparedReport;
    expect(resumed.training?.resumedAfterEpoch).toBe(1);
    expect(comparison.models.map((m) => m.epochs.run)).toEqual([2, 2]);
  });
});
