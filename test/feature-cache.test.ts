import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { lastValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { FeatureCache } from '../src/features/cache.js';
import { experiment, getGraph } from '../src/graphs/index.js';
import { FIXTURE_ROOT, fixtureImages, temporaryDir } from './helpers.js';

describe('FeatureCache', () => {
  it('returns what was stored, keyed by file content, and treats torn or altered entries as missing', async () => {
    const cache = new FeatureCache(await temporaryDir(), { model: 'm', size: 32 });
    const [photo] = await fixtureImages('watch');
    const key = await FeatureCache.contentKey(photo!);
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    const features = Float32Array.from({ length: 1280 }, (_, i) => Math.sin(i));
    expect(await cache.get(key, 1280)).toBeNull();
    await cache.set(key, features);
    expect(await cache.get(key, 1280)).toEqual(features);
    expect(await cache.get(key, 1000)).toBeNull();
    expect(await new FeatureCache(cache.dir).get(key, 1280)).toEqual(features); // the same folder, opened by path

    const file = join(cache.dir, `${key}.f32`);
    const bytes = await readFile(file);
    bytes[100] ^= 0xff;
    await writeFile(file, bytes);
    expect(await cache.get(key, 1280)).toBeNull();
    await writeFile(file, bytes.subarray(0, 50));
    expect(await cache.get(key, 1280)).toBeNull();
    expect(cache).toMatchObject({ hits: 1, corrupt: 3 });
  });

  it('a second run reuses every feature; a corrupted entry is recomputed, not trusted', async () => {
    const dir = await temporaryDir();
    const run = (out: string) => lastValueFrom(experiment(getGraph('mobilenetv2'), { data: FIXTURE_ROOT, limit: 20, epochs: 2, imageSize: 32, out: join(dir, out) }));
    const first = await run('a');
    expect(first.features).toMatchObject({ cached: true, hits: 0, misses: 20, corrupt: 0 });
    const entries = (await readdir(first.features.dir!)).filter((f) => f.endsWith('.f32'));
    expect(entries).toHaveLength(20);
    await writeFile(join(first.features.dir!, entries[0]!), 'garbage');
    const second = await run('b');
    expect(second.features).toMatchObject({ cached: true, hits: 19, misses: 1, corrupt: 1 });
    expect(second.operators['embed']!.items).toBe(1);
    expect(second.metrics.top1).toBe(first.metrics.top1);
    expect(second.history.map((h) => h.loss)).toEqual(first.history.map((h) => h.loss));
  });
});

describe('an unwritable feature cache', () => {
  it('warns once and the run goes on with features in memory', async () => {
    const dir = await temporaryDir();
    const previous = process.env['RXCNN_CACHE'];
    const blocker = join(dir, 'not-a-folder');
    await writeFile(blocker, 'x');
    process.env['RXCNN_CACHE'] = blocker;
    const warnings: string[] = [];
    try {
      const report = await lastValueFrom(experiment(getGraph('mobilenetv2'), { data: FIXTURE_ROOT, limit: 10, epochs: 1, imageSize: 32, out: join(dir, 'run') }, { onWarning: (w) => warnings.push(w) }));
      expect(report.history).toHaveLength(1);
    } finally {
      process.env['RXCNN_CACHE'] = previous;
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^feature cache not written \((ENOTDIR|EEXIST)\): /);
  });
});

describe('two cached views', () => {
  it('caches the mirror too, trains on both views and evaluates on their mean', async () => {
    const dir = await temporaryDir();
    const report = await lastValueFrom(experiment(getGraph('mobilenetv2'), { data: FIXTURE_ROOT, limit: 20, epochs: 2, imageSize: 40, views: 2, out: join(dir, 'v') }));
    expect(report.features).toMatchObject({ cached: true, misses: 40 });
    expect(report.features.augmentation).toMatch(/^mirror views/);
    expect(report.operators['embed']!.items).toBe(40);
    expect(report.operators['train']!.items).toBe(2 * 2 * report.dataset.train);
    expect(report.operators['predict']!.items).toBe(2 * report.dataset.test + 20);
    const entries = (await readdir(report.features.dir!)).filter((f) => f.endsWith('-mirror.f32'));
    expect(entries).toHaveLength(20);
  });
});

describe('inference on worker threads', () => {
  it.skipIf(tf.getBackend() !== 'wasm')('gives the main thread\'s features and full pass: same features cached, same run', async () => {
    const run = async (workers: number) => {
      const dir = await temporaryDir();
      const saved = process.env['RXCNN_CACHE'];
      process.env['RXCNN_CACHE'] = join(dir, 'cache'); // a cold cache for each
      try {
        const report = await lastValueFrom(experiment(getGraph('mobilenetv2'), { data: FIXTURE_ROOT, limit: 30, imageSize: 48, epochs: 2, workers, engine: 'tfjs', out: join(dir, 'run') }));
        expect(report.features.misses).toBe(30);
        expect(report.speed.engine).toMatchObject(workers > 0 ? { name: 'tfjs-workers', threads: workers } : { name: 'tfjs', threads: 1 });
        return { metrics: report.metrics, history: report.history.map(({ seconds: _, ...rest }) => rest), embedded: report.operators['embed']!.items };
      } finally {
        process.env['RXCNN_CACHE'] = saved;
      }
    };
    const before = tf.memory().numTensors;
    expect(await run(2)).toEqual(await run(0));
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('features from either engine', () => {
  it('share one cache: ONNX Runtime writes, tfjs reads every entry back, and both full passes agree', async () => {
    const dir = await temporaryDir();
    const saved = process.env['RXCNN_CACHE'];
    process.env['RXCNN_CACHE'] = join(dir, 'cache');
    try {
      const run = (engine: 'onnxruntime' | 'tfjs') => lastValueFrom(experiment(getGraph('mobilenetv2'), { data: FIXTURE_ROOT, limit: 30, imageSize: 48, epochs: 2, engine, workers: 0, out: join(dir, engine) }));
      const onnx = await run('onnxruntime');
      const tfjs = await run('tfjs');
      expect(onnx.speed.engine).toMatchObject({ name: 'onnxruntime', device: 'cpu' });
      expect(tfjs.speed.engine).toMatchObject({ name: 'tfjs' });
      expect([onnx.features.misses, tfjs.features.hits, tfjs.features.misses]).toEqual([30, 30, 0]);
      // the same head on the same cached features: the two engines' probabilities differ by float rounding only
      expect(tfjs.history).toEqual(onnx.history.map((h, i) => ({ ...h, seconds: tfjs.history[i]!.seconds })));
      expect(tfjs.metrics.confusion).toEqual(onnx.metrics.confusion);
      expect(Math.abs(tfjs.metrics.loss - onnx.metrics.loss)).toBeLessThan(1e-4);
    } finally {
      process.env['RXCNN_CACHE'] = saved;
    }
  });
});

describe('FeatureCache keys', () => {
  it('keeps the fast decoder\'s features apart from sharp\'s: different pixels are different features', async () => {
    const dir = await temporaryDir();
    const run = (decoder: 'fast' | 'sharp', out: string) => lastValueFrom(experiment(getGraph('mobilenetv2'), { data: FIXTURE_ROOT, limit: 10, epochs: 1, imageSize: 32, decoder, out: join(dir, out) }));
    const sharp = await run('sharp', 'a');
    const fast = await run('fast', 'b');
    expect(sharp.features).toMatchObject({ hits: 0, misses: 10 });
    expect(fast.features).toMatchObject({ hits: 0, misses: 10 });
    expect(fast.features.dir).not.toBe(sharp.features.dir);
    expect([sharp.options['decoder'], fast.options['decoder']]).toEqual(['sharp', 'fast']);
  });
});
