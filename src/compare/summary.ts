import type { ModelRow, Summary } from './comparison.js';
import { percent } from '../core/format.js';

// Accuracies equal to the shown precision (0.1 points) are a tie, not a win.
const accuracyKey = (row: ModelRow) => Math.round(1000 * row.meanPerClass);

function best(rows: readonly ModelRow[], key: (row: ModelRow) => number, highest: boolean): ModelRow[] {
  const values = rows.map(key);
  const target = highest ? Math.max(...values) : Math.min(...values);
  return rows.filter((_, i) => values[i] === target);
}

const names = (rows: readonly ModelRow[]) => {
  const labels = rows.map((r) => r.model);
  return labels.length > 1 ? `${labels.slice(0, -1).join(', ')} and ${labels.at(-1)} (tied)` : labels[0]!;
};

/** The model among `rows` that is at least as accurate and as fast as `row` and better in one, if any. */
function beatenBy(row: ModelRow, rows: readonly ModelRow[]): ModelRow | undefined {
  return rows.find(
    (other) =>
      other !== row &&
      accuracyKey(other) >= accuracyKey(row) &&
      other.speed.imagesPerSecond >= row.speed.imagesPerSecond &&
      (accuracyKey(other) > accuracyKey(row) || other.speed.imagesPerSecond > row.speed.imagesPerSecond),
  );
}

/**
 * The table in one paragraph: the most accurate model (by mean per-class test accuracy), the
 * fastest (full inference pass), the smallest (size on disk), and what speed costs in accuracy.
 */
export function summarize(rows: readonly ModelRow[]): Summary {
  if (rows.length === 0) throw new Error('nothing to summarise: no models');
  const accurate = best(rows, accuracyKey, true);
  const fastest = best(rows, (r) => r.speed.imagesPerSecond, true);
  const smallest = best(rows, (r) => r.size.bytes, false);
  const frontier = rows.filter((r) => !beatenBy(r, rows)).sort((a, b) => b.speed.imagesPerSecond - a.speed.imagesPerSecond);

  const sentences = [
    `Most accurate (mean per-class test accuracy): ${names(accurate)}, ${percent(accurate[0]!.meanPerClass)}.`,
    `Fastest: ${names(fastest)}, ${fastest[0]!.speed.imagesPerSecond.toFixed(1)} images/s (full pass ${fastest[0]!.speed.fullPassSeconds.toFixed(1)} s).`,
    `Smallest: ${names(smallest)}, ${smallest[0]!.size.megabytes.toFixed(1)} MB${smallest[0]!.size.estimated ? ' (estimated from parameters)' : ''}.`,
  ];
  if (frontier.length === 1) {
    sentences.push(`${frontier[0]!.model} is both the most accurate and the fastest: no trade-off.`);
  } else {
    const quick = frontier[0]!;
    const careful = frontier.at(-1)!;
    const points = 100 * (careful.meanPerClass - quick.meanPerClass);
    sentences.push(
      `Trade-off: ${quick.model} runs ${(quick.speed.imagesPerSecond / careful.speed.imagesPerSecond).toFixed(1)}× as fast as ${careful.model} for ${points.toFixed(1)} points less mean per-class accuracy` +
        (frontier.length > 2 ? `; ${frontier.slice(1, -1).map((r) => r.model).join(', ')} lie${frontier.length > 3 ? '' : 's'} between them.` : '.'),
    );
  }
  for (const row of rows) {
    const other = beatenBy(row, rows);
    if (other) sentences.push(`${row.model} is no better than ${other.model} on accuracy or speed.`);
  }
  const graphs = (list: readonly ModelRow[]) => list.map((r) => r.graph);
  return { mostAccurate: graphs(accurate), fastest: graphs(fastest), smallest: graphs(smallest), frontier: graphs(frontier), text: sentences.join(' ') };
}
