import { join } from 'node:path';
import { lossSum } from '../core/forward.js';
import { percent } from '../core/format.js';
import { addPredictions, emptyTally, summarize } from '../operators/metrics.js';
import { readTestPredictions, TEST_PREDICTIONS, writeTestPredictions, type LoadedTestPredictions } from '../stages/predictions.js';
import type { Comparison, EnsembleRow, ModelRow } from './comparison.js';

/** The ensemble's folder in a comparison: its averaged test probabilities. */
export const ENSEMBLE_DIR = 'ensemble';

/**
 * The comparison's ensemble row: every member's kept test probabilities (`<out>/<graph>/test-predictions.json`),
 * averaged per image over the test images every member predicted — all of them, as members see one
 * split — and scored like a model. Kept as `<out>/ensemble/test-predictions.json`. A member without
 * kept predictions (a run from before they were kept) leaves the row out, saying why.
 */
export async function ensembleRow(out: string, rows: readonly ModelRow[]): Promise<EnsembleRow | { members: string[]; skipped: string }> {
  const members = rows.map((r) => r.graph);
  let kept: LoadedTestPredictions[];
  try {
    kept = await Promise.all(members.map((graph) => readTestPredictions(join(out, graph))));
  } catch (error) {
    return { members, skipped: (error as Error).message };
  }
  const first = kept[0]!;
  const classes = first.classes;
  const different = kept.find((k) => k.classNames.join('\n') !== first.classNames.join('\n'));
  if (different) return { members, skipped: `the members' classes differ (${different.classNames.length} vs ${classes})` };
  const byPath = kept.map((k) => new Map(k.paths.map((path, i) => [path, i])));
  const paths = first.paths.filter((path) => byPath.every((m) => m.has(path)));
  const probs = new Float32Array(paths.length * classes);
  paths.forEach((path, row) => {
    kept.forEach((k, m) => {
      const at = byPath[m]!.get(path)! * classes;
      for (let c = 0; c < classes; c++) probs[row * classes + c]! += k.probs[at + c]! / kept.length;
    });
  });
  const labels = Int32Array.from(paths, (path) => first.labels[byPath[0]!.get(path)!]!);
  const metrics = summarize(addPredictions(emptyTally(classes), { probs, labels, paths, classes, lossSum: lossSum(probs, labels, classes) }));
  await writeTestPredictions(join(out, ENSEMBLE_DIR), { classes, paths, labels, probs }, first.classNames, first.tta);
  const seconds = rows.reduce((sum, r) => sum + r.speed.fullPassSeconds, 0);
  const bytes = rows.reduce((sum, r) => sum + r.size.bytes, 0);
  const images = rows[0]!.speed.images;
  return {
    graph: 'ensemble',
    // graph names: two graphs may run one model (mobilenetv2, mobilenetv2-finetune)
    model: `ensemble (${members.join(' + ')})`,
    members,
    tta: first.tta,
    images: paths.length,
    params: rows.reduce((sum, r) => sum + r.params, 0),
    size: { bytes, megabytes: bytes / 1e6, estimated: rows.some((r) => r.size.estimated) },
    top1: metrics.top1,
    top5: metrics.top5,
    meanPerClass: metrics.meanPerClass,
    speed: { batch: rows[0]!.speed.batch, images, fullPassSeconds: seconds, imagesPerSecond: images / seconds },
    backend: [...new Set(rows.map((r) => r.backend))].join(', '),
    predictions: `${ENSEMBLE_DIR}/${TEST_PREDICTIONS}`,
  };
}

/** The ensemble's row cells, in the table's column order (no study "average" or epochs: it has no train-image figures and trains nothing). */
function ensembleCells(e: EnsembleRow): string[] {
  return [e.model, e.params.toLocaleString('en-US'), `${e.size.megabytes.toFixed(1)}${e.size.estimated ? ' *' : ''}`, percent(e.top1), percent(e.top5), percent(e.meanPerClass), 'n/a', e.speed.fullPassSeconds.toFixed(1), e.speed.imagesPerSecond.toFixed(1), e.backend, '—', '—'];
}

/** What the ensemble row is, under the table. */
function ensembleNote(e: EnsembleRow | { members: string[]; skipped: string }): string {
  if (!('model' in e)) return `No ensemble row: ${e.skipped}.`;
  return `Ensemble: each test image's class probabilities averaged over ${e.members.join(', ')}${e.tta === 'flip' ? ' (each with flip TTA)' : ''}, on the same ${e.images} test images; parameters and size are the members' together, the full pass their passes one after another (summed seconds); it has no study "average" (train images are not kept) and trains nothing.`;
}

/** The summary's sentence on the ensemble against its best member. */
export function ensembleSentence(e: EnsembleRow | { members: string[]; skipped: string }, rows: readonly ModelRow[]): string {
  if (!('model' in e)) return `No ensemble row: ${e.skipped}.`;
  const best = rows.reduce((a, b) => (b.meanPerClass > a.meanPerClass ? b : a));
  const points = 100 * (e.meanPerClass - best.meanPerClass);
  return `The ensemble of ${rows.map((r) => r.graph).join(', ')} (test probabilities averaged): ${percent(e.meanPerClass)} mean per-class, ${points >= 0 ? '+' : '−'}${Math.abs(points).toFixed(1)} points against the best member, ${best.model} (${percent(best.meanPerClass)}), at ${e.speed.imagesPerSecond.toFixed(1)} images/s for all members' passes.`;
}

/** What a comparison shows of its ensemble: the row (if any) and the note under the table (if any). */
export function ensembleShown(c: Pick<Comparison, 'ensemble'>): { row: string[] | null; notes: string[] } {
  if (!c.ensemble) return { row: null, notes: [] };
  return { row: 'model' in c.ensemble ? ensembleCells(c.ensemble) : null, notes: [ensembleNote(c.ensemble)] };
}
