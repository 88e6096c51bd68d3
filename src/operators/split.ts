import { map, of, switchMap, type Observable, type OperatorFunction } from 'rxjs';
import { randomFor, shuffled } from '../core/random.js';
import type { Dataset, Sample, Skip, Split } from '../core/types.js';
import { datasetRelative } from './discover.js';

/**
 * How to divide a dataset:
 * - `ratio:F` — stratified: a seeded random fraction F of every class trains, the rest tests;
 * - `per-class:N[:M]` — Griffin et al.'s Caltech protocol: N random training images per class and
 *   up to M (default: all) of the remaining ones for test;
 * - `external` — all of the dataset trains; a second folder (`--test-data`) tests.
 */
export type Protocol =
  | { kind: 'ratio'; train: number }
  | { kind: 'per-class'; train: number; test: number }
  | { kind: 'external' };

export function parseProtocol(text: string): Protocol {
  const ratio = /^ratio:(0?\.\d+|1(\.0*)?|0)$/.exec(text);
  if (ratio) {
    const train = Number(ratio[1]);
    if (train > 0 && train < 1) return { kind: 'ratio', train };
  }
  const perClass = /^per-class:(\d+)(?::(\d+))?$/.exec(text);
  if (perClass && Number(perClass[1]) > 0) {
    return { kind: 'per-class', train: Number(perClass[1]), test: perClass[2] ? Number(perClass[2]) : Infinity };
  }
  if (text === 'external') return { kind: 'external' };
  throw new Error(`unknown protocol '${text}': use ratio:F (0<F<1), per-class:N[:M] or external`);
}

export function formatProtocol(protocol: Protocol): string {
  if (protocol.kind === 'ratio') return `ratio:${protocol.train}`;
  if (protocol.kind === 'per-class') return `per-class:${protocol.train}${Number.isFinite(protocol.test) ? `:${protocol.test}` : ''}`;
  return 'external';
}

export interface SplitOptions {
  protocol: Protocol;
  seed: number;
  /** With the `external` protocol: the test folder, its classes matched to the training classes by folder name. */
  testData?: Observable<Dataset>;
}

function byLabel(samples: readonly Sample[], classes: number): Sample[][] {
  const groups: Sample[][] = Array.from({ length: classes }, () => []);
  for (const sample of samples) groups[sample.label]!.push(sample);
  return groups;
}

function stratified(dataset: Dataset, protocol: Protocol & { kind: 'ratio' | 'per-class' }, seed: number): Split {
  const train: Sample[] = [];
  const test: Sample[] = [];
  const shortClasses: Split['shortClasses'] = [];
  const skipped: Skip[] = [...dataset.skipped];
  byLabel(dataset.samples, dataset.classes.length).forEach((group, label) => {
    const cls = dataset.classes[label]!;
    const order = shuffled(group, randomFor(seed, 'split', cls.id));
    if (protocol.kind === 'ratio') {
      const count = order.length < 2 ? order.length : Math.min(order.length - 1, Math.max(1, Math.round(order.length * protocol.train)));
      train.push(...order.slice(0, count));
      test.push(...order.slice(count));
      return;
    }
    if (order.length < protocol.train + 1) {
      shortClasses.push({ id: cls.id, images: order.length });
      const reason = `class has fewer than ${protocol.train + 1} images, as ${formatProtocol(protocol)} needs`;
      skipped.push(...group.map((sample) => ({ path: sample.path, reason })));
      return;
    }
    train.push(...order.slice(0, protocol.train));
    test.push(...order.slice(protocol.train, protocol.train + protocol.test));
  });
  // A class left out has no output: the model gets one per class it trains on, labels renumbered.
  const left = new Set(shortClasses.map((c) => c.id));
  const classes = dataset.classes.filter((c) => !left.has(c.id)).map((c, index) => ({ ...c, index }));
  const labelOf = new Map(dataset.classes.map((c) => [c.index, classes.findIndex((k) => k.id === c.id)]));
  const relabel = (sample: Sample): Sample => ({ ...sample, label: labelOf.get(sample.label)! });
  return {
    protocol: formatProtocol(protocol),
    seed,
    classes,
    train: left.size > 0 ? train.map(relabel) : train,
    test: left.size > 0 ? test.map(relabel) : test,
    skipped,
    roots: { train: dataset.root, test: dataset.root },
    shortClasses,
  };
}

function external(train: Dataset, test: Dataset, seed: number): Split {
  const labelOf = new Map(train.classes.map((c) => [c.id, c.index]));
  const skipped: Skip[] = [...train.skipped, ...test.skipped];
  const testSamples: Sample[] = [];
  for (const sample of test.samples) {
    const label = labelOf.get(test.classes[sample.label]!.id);
    if (label === undefined) skipped.push({ path: sample.path, reason: 'class not in the training data' });
    else testSamples.push({ path: sample.path, label });
  }
  return {
    protocol: 'external',
    seed,
    classes: train.classes,
    train: train.samples,
    test: testSamples,
    skipped,
    roots: { train: train.root, test: test.root },
    shortClasses: [],
  };
}

/** Divides a dataset into train and test samples, the same way for the same seed on every machine. */
export function split(options: SplitOptions): OperatorFunction<Dataset, Split> {
  const { protocol, seed, testData } = options;
  return switchMap((dataset) => {
    if (protocol.kind !== 'external') return of(stratified(dataset, protocol, seed));
    if (!testData) throw new Error('the external protocol needs a test folder (--test-data)');
    return testData.pipe(map((test) => external(dataset, test, seed)));
  });
}

export interface Manifest {
  protocol: string;
  seed: number;
  roots: { train: string; test: string };
  classes: string[];
  train: Array<[path: string, label: number]>;
  test: Array<[path: string, label: number]>;
  shortClasses: Split['shortClasses'];
}

/** Which file went where, with paths relative to their dataset roots. */
export function manifestOf(split: Split): Manifest {
  return {
    protocol: split.protocol,
    seed: split.seed,
    roots: split.roots,
    classes: split.classes.map((c) => c.id),
    train: split.train.map((s) => [datasetRelative(split.roots.train, s.path), s.label]),
    test: split.test.map((s) => [datasetRelative(split.roots.test, s.path), s.label]),
    shortClasses: split.shortClasses,
  };
}
