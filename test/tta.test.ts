import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { lastValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { TfjsEngine } from '../src/engines/index.js';
import { experiment, getGraph } from '../src/graphs/index.js';
import { loadModel } from '../src/models/persistence.js';
import type { Preprocessing } from '../src/models/preprocessing.js';
import { mirror } from '../src/operators/augment.js';
import { decodeImage } from '../src/decode/pixels.js';
import { readTestPredictions } from '../src/stages/predictions.js';
import { FIXTURE_ROOT, graph, temporaryDir } from './helpers.js';

const RUN = { data: FIXTURE_ROOT, limit: 30, epochs: 1, imageSize: 48 } as const;

describe('--tta flip', () => {
  it('headline figures average each test image with its mirror; the plain figures equal a run without TTA; the speed figure is the plain pass', async () => {
    const dir = await temporaryDir();
    const before = tf.memory().numTensors;
    const plain = await lastValueFrom(experiment(getGraph('mobilenetv2'), { ...RUN, out: join(dir, 'plain') }));
    const flipped = await lastValueFrom(experiment(getGraph('mobilenetv2'), { ...RUN, tta: 'flip', out: join(dir, 'flip') }));
    expect(tf.memory().numTensors).toBe(before);

    expect(plain.metrics.tta).toBe('none');
    expect(plain.metrics.plain).toBeUndefined();
    expect(flipped.metrics.tta).toBe('flip');
    const { top1, top5, meanPerClass, loss } = plain.metrics;
    expect(flipped.metrics.plain).toEqual({ top1, top5, meanPerClass, loss });
    // the timed pass is one plain pass over every image; the mirrored test images are timed apart
    expect(flipped.speed.images).toBe(plain.speed.images);
    expect(flipped.speed.ttaSeconds).toBeGreaterThan(0);
    expect(plain.speed.ttaSeconds).toBeUndefined();
    expect(flipped.metrics.studyAverage).toBe(plain.metrics.studyAverage);

    const without = await readTestPredictions(join(dir, 'plain'));
    const withTta = await readTestPredictions(join(dir, 'flip'));
    expect(withTta.tta).toBe('flip');
    expect(withTta.paths).toEqual(without.paths);
    expect(withTta.paths).toHaveLength(flipped.dataset.test);
    const classes = withTta.classes;

    // the mirror's probabilities computed directly, from the saved model, for two test images
    const { model, metadata } = await loadModel(join(dir, 'flip/model'));
    const engine = new TfjsEngine(model, metadata!.preprocessing as Preprocessing);
    try {
      for (const i of [0, withTta.paths.length - 1]) {
        const image = mirror(await decodeImage({ path: withTta.paths[i]!, label: withTta.labels[i]! }, { size: 48, mode: 'squash' }));
        const out = await engine.run({ x: image.pixels, shape: [1, 48, 48, 3], y: Int32Array.of(withTta.labels[i]!), paths: [image.path] });
        for (let c = 0; c < classes; c++) expect(withTta.probs[i * classes + c]).toBeCloseTo((without.probs[i * classes + c]! + out.values[c]!) / 2, 4);
      }
    } finally {
      await engine.dispose();
      model.dispose();
    }

    // the headline is what the kept (averaged) probabilities score
    let hits = 0;
    withTta.labels.forEach((label, i) => {
      const row = withTta.probs.subarray(i * classes, (i + 1) * classes);
      if (row.every((p) => p <= row[label]!)) hits++;
    });
    expect(flipped.metrics.top1).toBeCloseTo(hits / withTta.labels.length, 10);
    const md = await readFile(join(dir, 'flip/report.md'), 'utf8');
    expect(md).toContain('Test figures with flip TTA');
    expect(md).toMatch(/The full pass timed is the plain one; the mirrored pass over the test images took [\d.]+ s more, not in the speed figure\./);
  });

  it('with --views 2, the report says the test figures average each image with its mirror', async () => {
    const dir = await temporaryDir();
    const report = await lastValueFrom(experiment(getGraph('mobilenetv2'), { ...RUN, limit: 20, views: 2, tta: 'flip', out: join(dir, 'run') }));
    expect(report.features.augmentation).toMatch(/the test figures \(the full pass\) are each test image's averaged with its mirror's \(flip TTA\)$/);
  });

  it('the CLI says flip TTA and refuses an unknown --tta in one line', async () => {
    const dir = await temporaryDir();
    const bad = await graph('mobilenetv2', '--tta', 'rotate', '--out', join(dir, 'bad'));
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim()).toBe("rxcnn: unknown test-time augmentation 'rotate'; valid: none, flip");
    const ok = await graph('mobilenetv2', '--data', FIXTURE_ROOT, '--limit', '20', '--epochs', '1', '--image-size', '48', '--tta', 'flip', '--out', join(dir, 'run'));
    expect(ok.code).toBe(0);
    expect(ok.stderr).toMatch(/^test \(flip TTA\): top-1 [\d.]+%, top-5 [\d.]+%, mean per-class [\d.]+% \(plain: top-1 [\d.]+%, mean per-class [\d.]+%\) \| full pass/m);
  });
});
