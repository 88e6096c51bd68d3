import * as tf from '@tensorflow/tfjs-core';
import { lastValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { benchEpochsRss, formatEpochsRss } from '../bench/epochs-rss.js';
import { benchMemory, formatMemoryTable } from '../bench/memory.js';
import { benchOperators, formatOperatorTable } from '../bench/operators.js';
import { benchOverhead, formatOverheadTable } from '../bench/overhead.js';
import type { BareJob, BareReply } from '../bench/overhead-worker.js';
import { benchOverlap, formatOverlapTable } from '../bench/overlap.js';
import { findTorchPython } from '../bench/peer.js';
import { main } from '../bench/run.js';
import { startWorker } from '../src/core/worker.js';
import { discover } from '../src/operators/discover.js';
import { FIXTURE_ROOT } from './helpers.js';

const finitePositive = (x: number) => Number.isFinite(x) && x > 0;
const fixtureSamples = async (n: number) => (await lastValueFrom(discover(FIXTURE_ROOT))).samples.slice(0, n);

// The bench code on tiny inputs: it runs, and what it emits is well formed. No wall-clock assertions.
describe('bench', () => {
  it('measures every operator and each model on a tiny input', async () => {
    const before = tf.memory().numTensors;
    const rows = await benchOperators({ data: FIXTURE_ROOT, images: 6, size: 32, batch: 3, time: 10, models: ['mobilenetv2:0.5', 'mobilenetv1:0.25'] });
    expect(rows.map((r) => r.operator)).toEqual([
      'decode fast c=1',
      'decode fast c=2',
      'decode fast c=4',
      'decode sharp c=1',
      'decode sharp c=2',
      'decode sharp c=4',
      'discover',
      'augment',
      'batch',
      'normalize',
      'predict mobilenetv2_050',
      'train step mobilenetv2_050 (frozen backbone)',
      'predict mobilenetv1_025',
      'train step mobilenetv1_025 (frozen backbone)',
    ]);
    for (const row of rows) {
      expect(row.items).toBeGreaterThan(0);
      expect(finitePositive(row.itemsPerSecond)).toBe(true);
      expect(row.busyCores).toBeGreaterThanOrEqual(0);
      expect(row.itemsPerCoreSecond).toBeGreaterThan(0);
      expect(row.ratio).toBeCloseTo(row.itemsPerSecond / rows[0]!.itemsPerSecond, 9);
    }
    expect(formatOperatorTable(rows).split('\n')).toHaveLength(rows.length + 1);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('compares the decode operator with the bare library loop, for each decoder at each concurrency', async () => {
    const rows = await benchOverhead({ samples: await fixtureSamples(4), size: 32, concurrencies: [1, 2], rounds: 2, time: 5 });
    expect(rows.map((r) => `${r.decoder} ${r.concurrency}`)).toEqual(['fast 1', 'fast 2', 'sharp 1', 'sharp 2']);
    for (const row of rows) {
      expect(finitePositive(row.operatorPerSecond) && finitePositive(row.barePerSecond) && finitePositive(row.handBackPerSecond)).toBe(true);
      expect(finitePositive(row.handBackRatio)).toBe(true);
      expect(row.rounds).toHaveLength(2);
      expect(finitePositive(row.cpuRatio)).toBe(true);
      expect(Math.min(...row.rounds)).toBeLessThanOrEqual(row.ratio);
      expect(Math.max(...row.rounds)).toBeGreaterThanOrEqual(row.ratio);
    }
    expect(formatOverheadTable(rows).split('\n')).toHaveLength(5);
  });

  it("hands the bare loop's pixels back chunk by chunk only when asked", async () => {
    const paths = (await fixtureSamples(10)).map((s) => s.path);
    const worker = startWorker(new URL('../bench/overhead-worker.ts', import.meta.url), null);
    const replies = (handBack: boolean) =>
      new Promise<BareReply[]>((resolve) => {
        const got: BareReply[] = [];
        const listener = (reply: BareReply) => {
          got.push(reply);
          if ('pixels' in reply) return;
          worker.off('message', listener);
          resolve(got);
        };
        worker.on('message', listener);
        worker.postMessage({ paths, size: 32, decoder: 'fast', handBack } satisfies BareJob);
      });
    try {
      const handedBack = await replies(true);
      expect(handedBack.map((r) => ('pixels' in r ? r.pixels.map((p) => p.length) : r))).toEqual([Array(8).fill(32 * 32 * 3), [32 * 32 * 3, 32 * 32 * 3], { done: 10 }]);
      expect(await replies(false)).toEqual([{ done: 10 }]);
    } finally {
      await worker.terminate();
    }
  });

  it('measures end-to-end against decode-only and model-only, with the cores each pool used', async () => {
    const before = tf.memory().numTensors;
    const report = await benchOverlap({ samples: await fixtureSamples(4), size: 32, batch: 2, prefetchBatches: 2, setups: [{ concurrency: 2, sharpThreads: 1, workers: 0 }, { concurrency: 2, sharpThreads: 1, workers: 1 }], model: { name: 'mobilenetv2', alpha: 0.5 }, iterations: 1 });
    expect(report.images).toBe(4);
    expect(report.rows.map((r) => r.workers)).toEqual([0, 1]);
    for (const row of report.rows) {
      expect(finitePositive(row.decodeOnly) && finitePositive(row.modelOnly) && finitePositive(row.endToEnd)).toBe(true);
      expect(row.ratio).toBeCloseTo(row.endToEnd / Math.min(row.decodeOnly, row.modelOnly), 9);
      if (process.platform === 'linux') expect(row.endToEndCores!.main + row.endToEndCores!.libvips + row.endToEndCores!.other).toBeGreaterThan(0);
    }
    expect(report.rows).toContainEqual(expect.objectContaining(report.best));
    expect(report.inputFormats.map((f) => f.workers)).toEqual([1]);
    expect(finitePositive(report.inputFormats[0]!.pixels) && finitePositive(report.inputFormats[0]!.floats)).toBe(true);
    expect(formatOverlapTable(report)).toContain('end-to-end');
    expect(formatOverlapTable(report)).toMatch(/8-bit input \(workers normalise\) [\d.]+ img\/s vs float32 input/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('keeps decoded images in flight within the prefetch bound, unlike the same pipeline without it', async () => {
    const report = await benchMemory({ pool: await fixtureSamples(30), images: 30, size: 32, batch: 2, prefetchBatches: 2, slowdown: 10 });
    const peak = (pipeline: string, images: number) => report.rows.find((r) => r.pipeline === pipeline && r.images === images)!.peakDecodedInFlight;
    expect(report.rows).toHaveLength(4);
    expect(peak('prefetch', 30)).toBeLessThanOrEqual(4);
    expect(peak('no prefetch', 30)).toBeGreaterThan(4);
    expect(report.boundedFlat).toBe(true);
    for (const row of report.rows) expect(row.peakRssMB).toBeGreaterThanOrEqual(row.baselineRssMB);
    expect(formatMemoryTable(report).split('\n')).toHaveLength(7);
  });

  it('records resident memory and tensors after every epoch of a run that decodes anew each epoch', async () => {
    const report = await benchEpochsRss(3, 20, 32);
    expect(report.rows.map((r) => r.epoch)).toEqual([1, 2, 3]);
    for (const r of report.rows) {
      expect(r.rssMB).toBeGreaterThan(0);
      expect(r.seconds).toBeGreaterThan(0);
    }
    expect(report.tensorsFlat).toBe(true);
    expect(report.growthMB).toBeCloseTo(report.rows[2]!.rssMB - report.rows[1]!.rssMB, 6);
    expect(formatEpochsRss(report)).toMatch(/RSS from epoch 2 to 3: [+-]\d+\.\d MB; numTensors flat$/);
  });

  it('says how to install the peer when python or torch is missing, and refuses unknown benches', async () => {
    expect(findTorchPython(['rxcnn-no-such-python'])).toEqual({ missing: 'rxcnn-no-such-python not found' });
    await expect(main(['no-such-bench'])).rejects.toThrow(/unknown bench 'no-such-bench'/);
    await expect(main(['--only', 'nothing'])).rejects.toThrow(/unknown section 'nothing'/);
  });
});
