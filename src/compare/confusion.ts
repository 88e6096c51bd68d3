import type { ConfusedPair } from './comparison.js';

/**
 * The `limit` most frequent mistakes of a confusion matrix (rows: true class, columns: predicted),
 * most images first; equal counts by larger share of the true class, then by class order.
 */
export function mostConfused(confusion: readonly (readonly number[])[], classNames: readonly string[], limit = 20): ConfusedPair[] {
  const pairs: Array<ConfusedPair & { row: number; column: number }> = [];
  confusion.forEach((row, r) => {
    const total = row.reduce((a, b) => a + b, 0);
    row.forEach((count, c) => {
      if (c !== r && count > 0) pairs.push({ actual: classNames[r]!, predicted: classNames[c]!, count, shareOfActual: count / total, row: r, column: c });
    });
  });
  pairs.sort((a, b) => b.count - a.count || b.shareOfActual - a.shareOfActual || a.row - b.row || a.column - b.column);
  return pairs.slice(0, limit).map(({ actual, predicted, count, shareOfActual }) => ({ actual, predicted, count, shareOfActual }));
}
