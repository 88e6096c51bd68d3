import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { lastValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { Comparison, ComparedReport, EnsembleRow } from '../src/compare/comparison.js';
import { writeComparison } from '../src/compare/output.js';
import { compare } from '../src/compare/run.js';
import { readTestPredictions } from '../src/stages/predictions.js';
import { FIXTURE_ROOT, temporaryDir } from './helpers.js';

describe('compare: the ensemble row', () => {
  it("averages the members' test probabilities per image, scores them like a model, and says what its size and speed are", async () => {
    const out = join(await temporaryDir(), 'cmp');
    const before = tf.memory().numTensors;
    const comparison = await lastValueFrom(compare({ graphs: ['mobilenetv2', 'mobilenetv2-finetune'], options: { data: FIXTURE_ROOT, limit: 30, epochs: 1, imageSize: 48 }, out }));
    expect(tf.memory().numTensors).toBe(before);
    const saved = JSON.parse(await readFile(join(out, 'compare.json'), 'utf8')) as Comparison;
    expect(saved).toEqual(JSON.parse(JSON.stringify(comparison)));
    const e = saved.ensemble as EnsembleRow;
    expect(e).toMatchObject({ graph: 'ensemble', model: 'ensemble (mobilenetv2 + mobilenetv2-finetune)', members: ['mobilenetv2', 'mobilenetv2-finetune'], tta: 'none', images: saved.split.test, predictions: 'ensemble/test-predictions.json' });
    const [a, b] = saved.models;
    expect(e.params).toBe(a!.params + b!.params);
    expect(e.size.bytes).toBe(a!.size.bytes + b!.size.bytes);
    expect(e.speed.fullPassSeconds).toBeCloseTo(a!.speed.fullPassSeconds + b!.speed.fullPassSeconds, 9);
    expect(e.speed.imagesPerSecond).toBeCloseTo(a!.speed.images / e.speed.fullPassSeconds, 9);

    // the kept probabilities are the mean of the members' per image, and the row scores them
    const [pa, pb, pe] = await Promise.all(['mobilenetv2', 'mobilenetv2-finetune', 'ensemble'].map((dir) => readTestPredictions(join(out, dir))));
    expect(pe!.paths).toEqual(pa!.paths);
    expect(pb!.paths).toEqual(pa!.paths);
    pe!.probs.forEach((p, i) => expect(p).toBeCloseTo((pa!.probs[i]! + pb!.probs[i]!) / 2, 6));
    // the members differ (else the mean proves nothing): with --weights none both heads stay at the class prior, so two graphs on the embedded ImageNet weights
    expect(pa!.probs.some((p, i) => Math.abs(p - pb!.probs[i]!) > 1e-3)).toBe(true);
    const classes = pe!.classes;
    let hits = 0;
    pe!.labels.forEach((label, i) => {
      const row = pe!.probs.subarray(i * classes, (i + 1) * classes);
      if (row.every((p) => p <= row[label]!)) hits++;
    });
    expect(e.top1).toBeCloseTo(hits / pe!.labels.length, 10);
    expect(e.top5).toBeGreaterThanOrEqual(e.top1);

    expect(saved.summary.text).toMatch(/The ensemble of mobilenetv2, mobilenetv2-finetune \(test probabilities averaged\): [\d.]+% mean per-class, [+−][\d.]+ points against the best member, mobilenetv2_050 \([\d.]+%\), at [\d.]+ images\/s for all members' passes\./);
    const md = await readFile(join(out, 'compare.md'), 'utf8');
    expect(md).toContain('| ensemble (mobilenetv2 + mobilenetv2-finetune) |');
    expect(md).toContain('the full pass their passes one after another (summed seconds)');
    const html = await readFile(join(out, 'index.html'), 'utf8');
    expect(html).toContain('<tr class="ensemble"><td>ensemble (mobilenetv2 + mobilenetv2-finetune)</td>');

    // a member without kept predictions (a run from before they were kept): no row, and why
    await rm(join(out, 'mobilenetv2-finetune/test-predictions.json'));
    const runs = await Promise.all(['mobilenetv2', 'mobilenetv2-finetune'].map(async (graph) => ({ graph, report: JSON.parse(await readFile(join(out, graph, 'report.json'), 'utf8')) as ComparedReport })));
    const without = await writeComparison({ out, runs, options: {}, startedAt: new Date() });
    expect(without.ensemble).toMatchObject({ members: ['mobilenetv2', 'mobilenetv2-finetune'], skipped: expect.stringMatching(/test-predictions\.json is missing: the run kept no test predictions/) });
    const md2 = await readFile(join(out, 'compare.md'), 'utf8');
    expect(md2).not.toContain('| ensemble (');
    expect(md2).toContain('No ensemble row: ');
  });
});
