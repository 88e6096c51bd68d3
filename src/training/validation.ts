import { randomFor, shuffled } from '../core/random.js';
import type { Sample } from '../core/types.js';

/**
 * Holds out `fraction` of each class's training images for validation (seeded, stratified, at
 * least one image of every class with two or more), so that early stopping and the best epoch
 * are chosen without looking at the test images.
 */
export function holdOut(train: readonly Sample[], fraction: number, seed: number): { fit: Sample[]; validation: Sample[] } {
  if (!(fraction > 0)) return { fit: [...train], validation: [] };
  if (fraction >= 1) throw new Error(`the validation split must be a fraction below 1, got ${fraction}`);
  const byClass = new Map<number, Sample[]>();
  for (const s of train) byClass.set(s.label, [...(byClass.get(s.label) ?? []), s]);
  const held = new Set<string>();
  for (const [label, samples] of byClass) {
    if (samples.length < 2) continue;
    const count = Math.min(samples.length - 1, Math.max(1, Math.round(samples.length * fraction)));
    for (const s of shuffled(samples, randomFor(seed, 'validation', label)).slice(0, count)) held.add(s.path);
  }
  return { fit: train.filter((s) => !held.has(s.path)), validation: train.filter((s) => held.has(s.path)) };
}
