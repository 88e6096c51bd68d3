import { map, type MonoTypeOperatorFunction } from 'rxjs';
import { randomFor, shuffled } from '../core/random.js';
import type { Dataset, Sample } from '../core/types.js';

/**
 * Keeps at most `limit` samples, drawn at random (for `seed`) round-robin over the classes so the
 * subset stays balanced; for quick runs on a big dataset.
 */
export function subset(limit: number | undefined, seed: number): MonoTypeOperatorFunction<Dataset> {
  return map((dataset) => {
    if (limit === undefined || limit >= dataset.samples.length) return dataset;
    const queues = dataset.classes.map((c) =>
      shuffled(
        dataset.samples.filter((s) => s.label === c.index),
        randomFor(seed, 'subset', c.id),
      ),
    );
    const kept: Sample[] = [];
    for (let round = 0; kept.length < limit; round++) {
      for (const queue of queues) {
        if (round < queue.length && kept.length < limit) kept.push(queue[round]!);
      }
    }
    kept.sort((a, b) => a.label - b.label || (a.path < b.path ? -1 : 1));
    return { ...dataset, samples: kept };
  });
}
