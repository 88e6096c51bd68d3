import { describe, expect, it } from 'vitest';
import { benchOperators } from '../bench/operators.js';
import { formatTable } from '../bench/run.js';
import { FIXTURE_ROOT } from './helpers.js';

describe('bench', () => {
  it('measures every operator on a tiny input and emits well-formed rows', async () => {
    const rows = await benchOperators({ data: FIXTURE_ROOT, images: 6, size: 32, batch: 3, time: 10 });
    expect(rows.map((r) => r.operator)).toEqual([
      'decode c=1',
      'decode c=2',
      'decode c=4',
      'discover',
      'augment',
      'batch',
      'normalize',
      'predict (mobilenetv2 0.5)',
      'train step (mobilenetv2 0.5, frozen)',
    ]);
    for (const row of rows) {
      expect(row.items).toBeGreaterThan(0);
      expect(Number.isFinite(row.itemsPerSecond) && row.itemsPerSecond > 0).toBe(true);
      expect(row.ratio).toBeCloseTo(row.itemsPerSecond / rows[0]!.itemsPerSecond, 9);
    }
    expect(formatTable(rows).split('\n')).toHaveLength(rows.length + 1);
  });
});
