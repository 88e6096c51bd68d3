import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { graphsUsage, parseFlags, recipeFlags } from '../src/cli/flags.js';
import { parseCommandLine } from '../src/cli/graph.js';
import { BASE_OPTIONS, listGraphs } from '../src/graphs/index.js';
import { loadModel } from '../src/models/persistence.js';
import type { Manifest } from '../src/operators/split.js';
import type { Report } from '../src/report.js';
import { graph, temporaryDir } from './helpers.js';



const isFraction = (x: unknown) => typeof x === 'number' && x >= 0 && x <= 1;

describe('npm run graph', () => {
  it('runs mobilenetv2 end to end on the embedded real photos and writes a complete report', async () => {
    const out = join(await temporaryDir(), 'run');
    const result = await graph('mobilenetv2', '--limit', '80', '--epochs', '3', '--lr', '0.005', '--image-size', '96', '--out', out);
    expect(result.stderr).toMatch(/^backend: \w+/);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(`report: ${out}/report.md`);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as Report;
    const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as Manifest;

    expect(report).toMatchObject({ model: 'mobilenetv2_050', protocol: 'ratio:0.8', seed: 0 });
    expect(['tensorflow', 'wasm', 'cpu']).toContain(report.backend);
    expect(report.dataset).toMatchObject({ classes: 10, skipped: 0 });
    expect(report.dataset.root).toMatch(/fixtures\/caltech101-mini\/101_ObjectCategories$/);
    expect(report.dataset.train + report.dataset.test).toBe(80);
    expect(manifest.train).toHaveLength(report.dataset.train);
    expect(manifest.test).toHaveLength(report.dataset.test);

    const m = report.metrics;
    for (const key of ['top1', 'top5', 'meanPerClass', 'studyAverage'] as const) expect(isFraction(m[key]), key).toBe(true);
    expect(m.loss).toBeGreaterThan(0);
    expect(m.top5).toBeGreaterThanOrEqual(m.top1);
    // ImageNet features separate these ten classes far better than chance (10%).
    expect(m.top1).toBeGreaterThan(0.5);
    expect(m.confusion.flat().reduce((a, b) => a + b, 0)).toBe(report.dataset.test);

    expect(report.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    for (const h of report.history) {
      for (const key of ['top1', 'valTop1'] as const) expect(isFraction(h[key])).toBe(true);
      expect(h.loss).toBeGreaterThan(0);
      expect(h.valLoss).toBeGreaterThan(0);
      expect(h.seconds).toBeGreaterThan(0);
    }
    expect(report.history[2]!.loss).toBeLessThan(report.history[0]!.loss);

    expect(report.speed).toMatchObject({ batch: 32, images: 80 });
    expect(report.speed.fullPassSeconds).toBeGreaterThan(0);
    expect(report.speed.imagesPerSecond).toBeCloseTo(80 / report.speed.fullPassSeconds, 6);
    expect(report.size.params).toBe(706_224 + 1280 * 10 + 10);
    // the trained model is saved in the tfjs layers format, and loads back whole
    const [json, weights] = await Promise.all(['model.json', 'weights.bin'].map((f) => stat(join(out, 'model', f))));
    expect(report.size.bytes).toBe(json!.size + weights!.size);
    expect(weights!.size).toBe(4 * report.size.params);
    const saved = await loadModel(join(out, 'model'));
    expect(saved.model.countParams()).toBe(report.size.params);
    expect(saved.metadata).toEqual({ preprocessing: 'symmetric', inputSize: 96, classNames: report.dataset.classNames });
    saved.model.dispose();
    expect(report.training).toMatchObject({ epochsPlanned: 3, epochsRun: 3, stoppedEarly: false, restoredBest: false, validation: 'test images', lrSchedule: 'constant', resumedAfterEpoch: null });
    expect(report.history.map((h) => h.lr)).toEqual([0.005, 0.005, 0.005]);
    for (const op of ['discover', 'decode', 'batch', 'embed', 'train', 'predict', 'metrics']) {
      expect(report.operators[op], op).toBeDefined();
      expect(report.operators[op]!.items, op).toBeGreaterThan(0);
      expect(report.operators[op]!.perSecond, op).toBeGreaterThan(0);
    }
    // the frozen backbone's features are computed once; the full pass decodes every image again
    expect(report.operators['decode']!.items).toBe(80 + 80);
    expect(report.operators['embed']!.items).toBe(80);
    expect(report.operators['train']!.items).toBe(3 * report.dataset.train);
    expect(report.features).toMatchObject({ cached: true, misses: 80 });
    expect(report.history[0]!.seconds).toBeGreaterThan(report.history[2]!.seconds);
    const markdown = await readFile(join(out, 'report.md'), 'utf8');
    expect(markdown).toContain('| test top-1 |');
    expect(markdown).toContain('"average accuracy"');
  });

  it('--quiet prints only where the report is; --no-cache decodes and augments every epoch', async () => {
    const out = join(await temporaryDir(), 'quiet');
    const result = await graph('mobilenetv2', '--limit', '20', '--epochs', '2', '--image-size', '64', '--out', out, '--quiet', '--no-cache');
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(`report: ${out}/report.md\n`);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as Report;
    expect(report.features).toMatchObject({ cached: false, augmentation: 'on: every epoch decodes and augments anew' });
    expect(report.operators['augment']!.items).toBe(2 * report.dataset.train);
    expect(report.operators['embed']).toBeUndefined();
  });

  it('an unknown graph, flag or backend fails with one line that lists the valid ones', async () => {
    const unknownGraph = await graph('resnet9000');
    expect(unknownGraph.code).toBe(1);
    expect(unknownGraph.stderr).toMatch(/^rxcnn: unknown graph 'resnet9000'; known graphs: .*mobilenetv2.*\n$/);
    const unknownFlag = await graph('mobilenetv2', '--epoch', '3');
    expect(unknownFlag.stderr).toMatch(/^rxcnn: unknown or malformed flag --epoch; valid flags: .*--epochs.*\n$/);
    await expect(parseCommandLine(['mobilenetv2', '--backend', 'tpu'])).rejects.toThrow(/^unknown backend 'tpu'; valid: auto, gpu, tensorflow, wasm, cpu$/);
    await expect(parseCommandLine(['mobilenetv2', '--epochs', 'x'])).rejects.toThrow(/^--epochs expects a positive whole number, got 'x'$/);
    await expect(parseCommandLine(['mobilenetv2', '--workers=-1'])).rejects.toThrow(/^--workers expects a whole number ≥ 0, got '-1'$/);
    expect(await parseCommandLine(['mobilenetv2', '--workers', '0'])).toMatchObject({ options: { workers: 0 } });
    await expect(parseCommandLine(['mobilenetv2', '--lr-schedule', 'exponential'])).rejects.toThrow(/^unknown learning-rate schedule 'exponential'; valid: constant, cosine, step$/);
    await expect(parseCommandLine(['--resume', 'runs/x', '--epochs', '3'])).rejects.toThrow(/^--resume continues a run with its own graph and options; drop --epochs$/);
    await expect(parseCommandLine(['--resume', join(await temporaryDir(), 'none')])).rejects.toThrow(/^nothing to resume in .*: it has no checkpoint\/latest.json/);
  });

  it('maps flags onto experiment options', async () => {
    const parsed = await parseCommandLine(['mobilenetv2', '--data', 'd', '--test-data', 't', '--protocol', 'per-class:30', '--exclude', 'a,b', '--exclude', 'c', '--epochs', '3', '--batch', '16', '--image-size', '128', '--lr', '0.01', '--seed', '5', '--limit', '9', '--out', 'o', '--no-augment', '--class-weights', 'balanced', '--l2', '0.001', '--fine-tune', '2', '--lr-schedule', 'cosine', '--warmup', '1', '--patience', '4', '--val-split', '0.2', '--feature-norm', '10', '--label-smoothing', '0.1', '--workers', '2']);
    expect(parsed).toMatchObject({
      graph: 'mobilenetv2',
      backend: 'auto',
      options: { data: 'd', testData: 't', protocol: 'per-class:30', exclude: ['a', 'b', 'c'], epochs: 3, batch: 16, imageSize: 128, lr: 0.01, seed: 5, limit: 9, out: 'o', augment: false, classWeights: 'balanced', l2: 0.001, fineTune: 2, lrSchedule: 'cosine', warmup: 1, patience: 4, valSplit: 0.2, featureNorm: 10, labelSmoothing: 0.1, workers: 2 },
    });
    const staged = await parseCommandLine(['mobilenetv2', '--fine-tune', '2', '--fine-tune-epochs', '3', '--fine-tune-lr', '0.0001', '--fine-tune-patience', '2', '--workers', 'auto', '--engine', 'tfjs']);
    expect(staged).toMatchObject({ options: { fineTune: 2, fineTuneEpochs: 3, fineTuneLr: 0.0001, fineTunePatience: 2, workers: 'auto', engine: 'tfjs' } });
    await expect(parseCommandLine(['mobilenetv2', '--engine', 'onnx'])).rejects.toThrow(/^unknown engine 'onnx'; valid: auto, onnxruntime, tfjs$/);
    expect(await parseCommandLine(['mobilenetv2', '--feature-norm', '0'])).toMatchObject({ options: { featureNorm: 0 } });
    await expect(parseCommandLine(['mobilenetv2', '--feature-norm=-1'])).rejects.toThrow(/^--feature-norm /);
    await expect(parseCommandLine(['mobilenetv2', '--workers', 'many'])).rejects.toThrow(/^--workers expects a whole number ≥ 0, got 'many'$/);
  });

  it('--help lists every graph with its recipe as flags, and those flags set exactly that recipe', () => {
    const usage = graphsUsage();
    for (const g of listGraphs()) {
      const flags = recipeFlags(g.experiment.defaults);
      expect(usage.split('\n').some((line) => line.startsWith(`  ${g.name} `) && line.trimEnd().endsWith(` ${flags}`)), g.name).toBe(true);
      const { data: _, ...parsed } = parseFlags(flags.split(' ')).flags.options;
      expect({ ...BASE_OPTIONS, ...parsed }, g.name).toEqual({ ...BASE_OPTIONS, ...g.experiment.defaults });
    }
    expect(recipeFlags({ ...BASE_OPTIONS })).toBe('');
    expect(recipeFlags({ cache: false, members: ['a', 'b'] })).toBe('--no-cache --members a,b');
  });
});
