import type { Manifest } from '../operators/split.js';

function firstDifference(a: ReadonlyArray<readonly [string, number]>, b: ReadonlyArray<readonly [string, number]>): string {
  const i = a.findIndex((entry, k) => entry[0] !== b[k]?.[0] || entry[1] !== b[k]?.[1]);
  const at = i === -1 ? a.length : i;
  return `${a.length} vs ${b.length} files, first difference at #${at + 1}: ${a[at]?.[0] ?? '(none)'} vs ${b[at]?.[0] ?? '(none)'}`;
}

/** How split `b` differs from split `a`, in a few words, or null when they are the same. */
export function splitDifference(a: Manifest, b: Manifest): string | null {
  if (a.protocol !== b.protocol) return `protocol ${a.protocol} vs ${b.protocol}`;
  if (a.seed !== b.seed) return `seed ${a.seed} vs ${b.seed}`;
  if (a.roots.train !== b.roots.train || a.roots.test !== b.roots.test) return `dataset ${a.roots.train} vs ${b.roots.train}`;
  if (a.classes.join('\n') !== b.classes.join('\n')) return `classes: ${a.classes.length} vs ${b.classes.length}`;
  const same = (x: Manifest['train'], y: Manifest['train']) => x.length === y.length && x.every((entry, k) => entry[0] === y[k]![0] && entry[1] === y[k]![1]);
  if (!same(a.train, b.train)) return `training images: ${firstDifference(a.train, b.train)}`;
  if (!same(a.test, b.test)) return `test images: ${firstDifference(a.test, b.test)}`;
  if (JSON.stringify(a.shortClasses) !== JSON.stringify(b.shortClasses)) return 'classes left out for too few images';
  return null;
}
