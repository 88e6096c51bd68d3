import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { lastValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { TfjsEngine } from '../src/engines/index.js';
import { parseCompareCommandLine } from '../src/cli/compare.js';
import { RunInterrupted } from '../src/graphs/experiment.js';
import { experiment, getGraph } from '../src/graphs/index.js';
import { concatFeatures, createModel, disposeClassifier } from '../src/models/index.js';
import { loadModel } from '../src/models/persistence.js';
import type { Preprocessing } from '../src/models/preprocessing.js';
import { decodeImage } from '../src/decode/pixels.js';
import { readTestPredictions } from '../src/stages/predictions.js';
import { FIXTURE_ROOT, graph, temporaryDir } from './helpers.js';

// Only MobileNetV2-0.5's ImageNet file is embedded, so the members run on random backbones: their
// features are tiny (1e-11 to 1e-5) but differ per image, and --feature-norm scales each member's
// to length 10 — which is what the flag is for.
const members = ['mobilenetv2_035', 'squeezenet'];
const RUN = { data: FIXTURE_ROOT, limit: 30, epochs: 2, imageSize: 48, weights: 'none', featureNorm: 10, members } as const;

/** Checks a run's kept test probabilities against its saved member backbones then its saved head, on three images; their largest spread. */
async function directSpread(run: string, tests: number): Promise<number> {
  const kept = await readTestPredictions(run);
  expect(kept.paths).toHaveLength(tests);
  const head = await loadModel(join(run, 'model/head'));
  const backbones = await Promise.all(members.map((m) => loadModel(join(run, 'model/members', m))));
  const engines = backbones.map(({ model, metadata }) => new TfjsEngine(model, metadata!.preprocessing as Preprocessing));
  let spread = 0;
  try {
    for (const i of [0, 1, kept.paths.length - 1]) {
      const image = await decodeImage({ path: kept.paths[i]!, label: kept.labels[i]! }, { size: 48, mode: 'squash' });
      const batch = { x: image.pixels, shape: [1, 48, 48, 3] as [number, number, number, number], y: Int32Array.of(kept.labels[i]!), paths: [image.path] };
      const parts = await Promise.all(engines.map(async (e) => (await e.run(batch)).values));
      const probs = tf.tidy(() => tf.softmax(head.model.predict(tf.tensor2d(concatFeatures(parts, 10), [1, 1792])) as tf.Tensor).dataSync());
      for (let c = 0; c < kept.classes; c++) expect(kept.probs[i * kept.classes + c]).toBeCloseTo(probs[c]!, 3);
      spread = Math.max(spread, Math.max(...probs) - Math.min(...probs));
    }
  } finally {
    await Promise.all(engines.map((e) => e.dispose()));
    [head, ...backbones].forEach((m) => m.model.dispose());
  }
  return spread;
}

describe('the ensemble graph', () => {
  it("trains one head on its members' features side by side; the full pass runs every member's backbone then the head; resumes", async () => {
    const dir = await temporaryDir();
    const before = tf.memory().numTensors;
    const report = await lastValueFrom(experiment(getGraph('ensemble'), { ...RUN, out: join(dir, 'whole') }));
    expect(tf.memory().numTensors).toBe(before);

    expect(report.model).toBe('ensemble(mobilenetv2_035+squeezenet)');
    expect(report.history).toHaveLength(2);
    expect(report.training.stages).toMatchObject([{ name: 'train', epochs: 2, lr: 1e-3, input: 'features', patience: null, epochsRun: 2 }]);
    expect(report.features.cached).toBe(true);
    expect(report.features.misses).toBe(2 * 30); // each member's features of every image, each in its own cache
    expect(report.features.augmentation).toContain('2 member backbones, each with its own cache, their features side by side, each scaled to L2 length 10 first');
    expect(report.speed.engine.name).toMatch(/: 2 member backbones, then the head on tfjs$/);
    // size: every member's backbone and the head (1280 + 512 features → 10 classes)
    const sizes = await Promise.all(members.map((m) => createModel(m, { classes: 10, weights: 'none', inputSize: 48 })));
    expect(report.size.params).toBe(sizes.reduce((n, m) => n + m.backbone!.countParams(), 0) + (1280 + 512 + 1) * 10);
    sizes.forEach(disposeClassifier);

    // the kept test probabilities equal the saved members then the saved head, computed directly
    expect(await directSpread(join(dir, 'whole'), report.dataset.test)).toBeGreaterThan(0.01); // the head learned something image-dependent

    // stopped after epoch 1 and resumed: the head's weights come back, the same figures as the whole run
    const out = join(dir, 'stopped');
    const stop = new AbortController();
    await expect(lastValueFrom(experiment(getGraph('ensemble'), { ...RUN, out }, { signal: stop.signal, onEpoch: (h) => h.epoch === 1 && stop.abort('SIGINT') }))).rejects.toThrow(RunInterrupted);
    const resumed = await lastValueFrom(experiment(getGraph('ensemble'), { ...RUN, out, resume: true }));
    expect(resumed.training.resumedAfterEpoch).toBe(1);
    expect(resumed.history).toEqual(report.history.map((h, i) => ({ ...h, seconds: resumed.history[i]!.seconds })));
    // (--weights none: the random backbones are drawn from the seed, so the resumed run rebuilds the
    // same members and its full pass scores as the whole run's did)
    expect([resumed.metrics.meanPerClass, resumed.metrics.top1]).toEqual([report.metrics.meanPerClass, report.metrics.top1]);
    expect(await directSpread(out, report.dataset.test)).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses bad members in one line', async () => {
    const dir = await temporaryDir();
    const unknown = await graph('ensemble', '--members', 'mobilenetv2,resnet50', '--out', join(dir, 'a'));
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr.trim()).toMatch(/^rxcnn: unknown model 'resnet50'; known models: .*mobilenetv2_035.*squeezenet/);
    const elsewhere = await graph('mobilenetv2', '--members', 'mobilenetv2,squeezenet', '--out', join(dir, 'b'));
    expect(elsewhere.stderr.trim()).toBe('rxcnn: --members is for the ensemble graph, not mobilenetv2');
    await expect(lastValueFrom(experiment(getGraph('ensemble'), { ...RUN, members: ['squeezenet'], out: join(dir, 'c') }))).rejects.toThrow(/^the ensemble graph needs at least two --members \(comma-separated\), got 1$/);
    await expect(lastValueFrom(experiment(getGraph('ensemble'), { ...RUN, cache: false, out: join(dir, 'd') }))).rejects.toThrow(/^the ensemble graph trains one head on its members' cached features: --fine-tune and --no-cache do not apply$/);
  });
});

describe('npm run compare with the ensemble graph', () => {
  it('takes --members for it, and refuses them without it or with an unknown name', () => {
    expect(parseCompareCommandLine(['mobilenetv2', 'ensemble', '--members', 'mobilenetv2_035,squeezenet'])).toMatchObject({ graphs: ['mobilenetv2', 'ensemble'], flags: { options: { members: ['mobilenetv2_035', 'squeezenet'] } } });
    expect(() => parseCompareCommandLine(['mobilenetv2', 'squeezenet', '--members', 'mobilenetv2_035,squeezenet'])).toThrow(/^--members is for the ensemble graph, and no ensemble graph is compared$/);
    expect(() => parseCompareCommandLine(['mobilenetv2', 'ensemble', '--members', 'mobilenetv2,vgg16'])).toThrow(/^unknown model 'vgg16'; known models: /);
  });
});
