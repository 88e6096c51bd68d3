import type { ComparedReport, ModelRow } from './comparison.js';
import { percent } from '../core/format.js';

/**
 * The best epoch of a run: the one its training record names, else the epoch with the lowest
 * validation loss (the first of equals).
 */
export function bestEpochOf(report: ComparedReport): { best: number; bestBy: ModelRow['epochs']['bestBy'] } {
  if (report.training) return { best: report.training.bestEpoch, bestBy: 'training' };
  const lowest = report.history.reduce<ComparedReport['history'][number] | null>((best, h) => (best === null || h.valLoss < best.valLoss ? h : best), null);
  return { best: lowest?.epoch ?? 0, bestBy: 'lowest validation loss' };
}

/** One model's row of the comparison table. */
export function rowOf(graph: string, report: ComparedReport): ModelRow {
  const { best, bestBy } = bestEpochOf(report);
  const { params, bytes } = report.size;
  return {
    graph,
    model: report.model,
    weights: report.weights,
    backend: report.backend,
    params,
    // A saved model is never exactly its float32 weights (it carries its topology too), so equality means estimated.
    size: { bytes, megabytes: bytes / 1e6, estimated: report.size.estimated ?? bytes === 4 * params },
    top1: report.metrics.top1,
    top5: report.metrics.top5,
    meanPerClass: report.metrics.meanPerClass,
    studyAverage: report.metrics.studyAverage,
    speed: { batch: report.speed.batch, images: report.speed.images, fullPassSeconds: report.speed.fullPassSeconds, imagesPerSecond: report.speed.imagesPerSecond },
    epochs: {
      run: report.training?.epochsRun ?? report.history.length,
      planned: report.training?.epochsPlanned ?? null,
      best,
      bestBy,
      stoppedEarly: report.training?.stoppedEarly ?? null,
      validation: report.training?.validation ?? 'test images',
    },
  };
}

/** Column headings of the comparison table, as compare.md and index.html show it. */
export const TABLE_HEADER = [
  'model',
  'params',
  'size (MB)',
  'top-1',
  'top-5',
  'mean per-class',
  'study "average" †',
  'full pass (s)',
  'images/s',
  'backend',
  'epochs run',
  'best epoch',
] as const;

/** One row's cells as text, in {@link TABLE_HEADER} order. */
export function tableCells(row: ModelRow): string[] {
  const epochs = row.epochs.planned !== null && row.epochs.planned !== row.epochs.run ? `${row.epochs.run} of ${row.epochs.planned}` : String(row.epochs.run);
  return [
    row.model,
    row.params.toLocaleString('en-US'),
    `${row.size.megabytes.toFixed(1)}${row.size.estimated ? ' *' : ''}`,
    percent(row.top1),
    percent(row.top5),
    percent(row.meanPerClass),
    percent(row.studyAverage),
    row.speed.fullPassSeconds.toFixed(1),
    row.speed.imagesPerSecond.toFixed(1),
    row.backend,
    epochs,
    String(row.epochs.best),
  ];
}

/** The notes under the table that explain its marks. */
export function tableNotes(rows: readonly ModelRow[]): string[] {
  const first = rows[0];
  const notes = [
    '† The study\'s "average accuracy": top-1 over train and test images together, shown only to compare with its table; every other accuracy is on test images only.',
    first ? `Full pass: one inference pass over all ${first.speed.images} images at batch ${first.speed.batch}, decode included.` : '',
  ];
  if (rows.some((r) => r.size.estimated)) notes.push('* Estimated as parameters × 4 bytes (float32): the trained model was not saved.');
  const validation = [...new Set(rows.map((r) => r.epochs.validation))].join(' or ');
  notes.push(`Best epoch: the epoch with the lowest validation loss (validation on ${validation}).`);
  return notes.filter(Boolean);
}
