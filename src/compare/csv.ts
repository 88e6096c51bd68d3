import type { ComparedReport } from './comparison.js';

const CSV_NUMBER = (x: number) => (Number.isFinite(x) ? String(x) : '');

/**
 * A run's per-epoch log as CSV, the columns of the study's TensorBoard exports
 * (`epoch,loss,accuracy,val_loss,val_accuracy`), plus `lr` when the run recorded it.
 */
export function historyCsv(history: ComparedReport['history']): string {
  const withLr = history.some((h) => h.lr !== undefined);
  const header = ['epoch', 'loss', 'accuracy', 'val_loss', 'val_accuracy', ...(withLr ? ['lr'] : [])];
  const rows = history.map((h) => [h.epoch, h.loss, h.top1, h.valLoss, h.valTop1, ...(withLr ? [h.lr ?? Number.NaN] : [])].map(CSV_NUMBER).join(','));
  return `${[header.join(','), ...rows].join('\n')}\n`;
}
