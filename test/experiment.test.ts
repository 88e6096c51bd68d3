import { cp, mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { experiment, experimentEvents, getGraph } from '../src/graphs/index.js';
import type { Manifest } from '../src/operators/split.js';
import { FIXTURE_ROOT, fixtureImages, temporaryDir } from './helpers.js';

describe('experiment', () => {
  it('trains on --data and tests on --test-data, matching classes by folder name and counting the rest as skipped', async () => {
    const dir = await temporaryDir();
    const testRoot = join(dir, 'test');
    for (const cls of ['watch', 'ketch']) {
      await mkdir(join(testRoot, cls), { recursive: true });
      for (const photo of (await fixtureImages(cls)).slice(-3)) await cp(photo, join(testRoot, cls, photo.split('/').pop()!));
    }
    await mkdir(join(testRoot, 'zebra'));
    await cp((await fixtureImages('bonsai'))[0]!, join(testRoot, 'zebra/z.jpg'));
    const warnings: string[] = [];
    const report = await lastValueFrom(
      experiment(getGraph('mobilenetv2'), { data: FIXTURE_ROOT, testData: testRoot, limit: 20, epochs: 1, imageSize: 32, out: join(dir, 'run') }, { onWarning: (w) => warnings.push(w) }),
    );
    expect(report.protocol).toBe('external');
    expect(report.dataset).toMatchObject({ root: FIXTURE_ROOT, testRoot, train: 20, test: 6, skipped: 1 });
    expect(report.dataset.skippedByReason).toEqual({ 'class not in the training data': 1 });
    expect(report.speed.images).toBe(26);
    const manifest = JSON.parse(await readFile(join(dir, 'run/manifest.json'), 'utf8')) as Manifest;
    expect(manifest.test.map(([path]) => path.split('/')[0]).sort()).toEqual(['ketch', 'ketch', 'ketch', 'watch', 'watch', 'watch']);
    expect(warnings).toEqual([]);
  });

  it('--views 2: the report says the per-epoch figures average the image and its mirror and the test figures are of the plain images', async () => {
    const dir = await temporaryDir();
    // observed as the stream of run events: progress of every phase, the epoch, then the report
    const events = await lastValueFrom(experimentEvents(getGraph('mobilenetv2'), { data: FIXTURE_ROOT, limit: 20, epochs: 1, imageSize: 32, views: 2, out: join(dir, 'run') }).pipe(toArray()));
    expect([...new Set(events.map((e) => (e.type === 'progress' ? e.progress.phase : e.type)))]).toEqual(['features', 'train', 'evaluate', 'epoch', 'full pass', 'done']);
    const last = events.at(-1)!;
    if (last.type !== 'done') throw new Error('the stream ends with the report');
    const report = last.report;
    expect(report.features.augmentation).toMatch(/per-epoch "val" figures average both; the test figures \(the full pass\) are of the plain images$/);
    expect(await readFile(join(dir, 'run/report.md'), 'utf8')).toContain('the test figures (the full pass) are of the plain images');
    // the full pass saw each image once, not each view
    expect(report.speed.images).toBe(20);
    expect(report.features.hits + report.features.misses).toBe(40); // each image in both views
  });

  it('augments by the dataset-relative path: the folder typed relative or absolute trains the same with the same seed', async () => {
    const dir = await temporaryDir();
    const run = (data: string, out: string) => lastValueFrom(experiment(getGraph('mobilenetv2'), { data, cache: false, limit: 20, epochs: 1, imageSize: 32, seed: 3, out: join(dir, out) }));
    const typed = await run('fixtures/caltech101-mini', 'relative');
    const absolute = await run(resolve('fixtures/caltech101-mini'), 'absolute');
    expect(typed.history[0]!.loss).toBe(absolute.history[0]!.loss);
    expect(typed.metrics).toEqual(absolute.metrics);
  });

  it('warns about classes too small for per-class:N and fails clearly when nothing is left to train on', async () => {
    const dir = await temporaryDir();
    const warnings: string[] = [];
    const run = experiment(getGraph('mobilenetv2'), { data: FIXTURE_ROOT, protocol: 'per-class:35', epochs: 1, imageSize: 32, out: join(dir, 'run') }, { onWarning: (w) => warnings.push(w) });
    const report = await lastValueFrom(run);
    expect(report.dataset.shortClasses.map((c) => c.id).sort()).toEqual(['Faces_easy', 'accordion', 'airplanes', 'bonsai', 'car_side', 'chandelier'].sort());
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^per-class:35 left out 6 class\(es\) with too few images: /);
    await expect(lastValueFrom(experiment(getGraph('mobilenetv2'), { data: FIXTURE_ROOT, protocol: 'per-class:50', epochs: 1, imageSize: 32, out: join(dir, 'run2') }))).rejects.toThrow(
      /^the split \(per-class:50\) left no training images$/,
    );
  });
});
