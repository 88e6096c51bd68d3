import { firstValueFrom, of } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { Dataset } from '../src/core/types.js';
import { discover } from '../src/operators/discover.js';
import { manifestOf, parseProtocol, split } from '../src/operators/split.js';
import { FIXTURE_ROOT } from './helpers.js';

/** A synthetic dataset: class i has sizes[i] images. */
function dataset(sizes: number[], root = '/data'): Dataset {
  const classes = sizes.map((_, i) => ({ id: `c${i}`, name: `c${i}`, index: i }));
  const samples = sizes.flatMap((n, label) => Array.from({ length: n }, (_, j) => ({ path: `${root}/c${label}/${j}.jpg`, label })));
  return { root, classes, samples, skipped: [] };
}

const run = (d: Dataset, protocol: string, seed: number, test?: Dataset) =>
  firstValueFrom(of(d).pipe(split({ protocol: parseProtocol(protocol), seed, ...(test ? { testData: of(test) } : {}) })));

describe('split', () => {
  it('ratio:0.8 is stratified: every class splits 80/20 and no file is in both or lost', async () => {
    const d = dataset([10, 25, 40]);
    const s = await run(d, 'ratio:0.8', 0);
    const count = (list: typeof s.train, label: number) => list.filter((x) => x.label === label).length;
    expect([0, 1, 2].map((l) => count(s.train, l))).toEqual([8, 20, 32]);
    expect([0, 1, 2].map((l) => count(s.test, l))).toEqual([2, 5, 8]);
    const paths = [...s.train, ...s.test].map((x) => x.path).sort();
    expect(paths).toEqual(d.samples.map((x) => x.path).sort());
  });

  it('is deterministic for a seed and differs between seeds', async () => {
    const d = dataset([30, 30]);
    const a = await run(d, 'ratio:0.8', 7);
    const b = await run(d, 'ratio:0.8', 7);
    const c = await run(d, 'ratio:0.8', 8);
    expect(manifestOf(a)).toEqual(manifestOf(b));
    expect(manifestOf(a).test).not.toEqual(manifestOf(c).test);
  });

  it("per-class:N:M takes N train and up to M test images per class and reports classes that are too small", async () => {
    const s = await run(dataset([50, 31, 30]), 'per-class:30:5', 1);
    expect(s.train.filter((x) => x.label === 0)).toHaveLength(30);
    expect(s.test.filter((x) => x.label === 0)).toHaveLength(5);
    expect(s.test.filter((x) => x.label === 1)).toHaveLength(1);
    expect(s.shortClasses).toEqual([{ id: 'c2', images: 30 }]);
    // the class left out has no output: two classes remain, labels 0 and 1
    expect(s.classes.map((c) => [c.id, c.index])).toEqual([['c0', 0], ['c1', 1]]);
    expect(new Set([...s.train, ...s.test].map((x) => x.label))).toEqual(new Set([0, 1]));
    const middle = await run(dataset([40, 20, 40]), 'per-class:30', 1);
    expect(middle.classes.map((c) => [c.id, c.index])).toEqual([['c0', 0], ['c2', 1]]);
    expect([...middle.train, ...middle.test].every((x) => x.path.includes(`/${middle.classes[x.label]!.id}/`))).toBe(true);
    const all = await run(dataset([50]), 'per-class:30', 1);
    expect(all.test).toHaveLength(20);
  });

  it('external test data: all of the data trains, test classes match by folder name', async () => {
    const train = dataset([5, 5], '/train');
    const test: Dataset = {
      root: '/test',
      classes: [
        { id: 'c1', name: 'c1', index: 0 },
        { id: 'zz', name: 'zz', index: 1 },
      ],
      samples: [
        { path: '/test/c1/a.jpg', label: 0 },
        { path: '/test/zz/b.jpg', label: 1 },
      ],
      skipped: [],
    };
    const s = await run(train, 'external', 0, test);
    expect(s.train).toHaveLength(10);
    expect(s.test).toEqual([{ path: '/test/c1/a.jpg', label: 1 }]);
    expect(s.skipped).toEqual([{ path: '/test/zz/b.jpg', reason: 'class not in the training data' }]);
  });

  it('writes a manifest of relative paths and labels that covers the real fixture dataset', async () => {
    const s = await firstValueFrom(discover(FIXTURE_ROOT).pipe(split({ protocol: parseProtocol('ratio:0.8'), seed: 0 })));
    const m = manifestOf(s);
    expect(m.protocol).toBe('ratio:0.8');
    expect(m.classes).toHaveLength(10);
    expect(m.train.length + m.test.length).toBe(345);
    expect(m.train[0]![0]).toMatch(/^[A-Za-z_]+\/image_\d{4}\.jpg$/);
    expect(new Set([...m.train, ...m.test].map(([p]) => p)).size).toBe(345);
  });

  it('rejects malformed protocols with one line', () => {
    expect(() => parseProtocol('ratio:1.5')).toThrow(/^unknown protocol 'ratio:1.5'/);
    expect(() => parseProtocol('per-class:0')).toThrow(/unknown protocol/);
    expect(() => parseProtocol('80/20')).toThrow(/use ratio:F/);
    expect(parseProtocol('per-class:30:50')).toEqual({ kind: 'per-class', train: 30, test: 50 });
  });
});
