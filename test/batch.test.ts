import { from, lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { DecodedImage } from '../src/core/types.js';
import { batch } from '../src/operators/batch.js';

const image = (i: number, size = 2): DecodedImage => ({ path: `p${i}`, label: i % 3, width: size, height: size, pixels: new Uint8Array(size * size * 3).fill(i) });

describe('batch', () => {
  it('packs images NHWC with labels and paths in order and keeps the last partial batch', async () => {
    const batches = await lastValueFrom(from([0, 1, 2, 3, 4].map((i) => image(i))).pipe(batch(2), toArray()));
    expect(batches.map((b) => b.shape)).toEqual([
      [2, 2, 2, 3],
      [2, 2, 2, 3],
      [1, 2, 2, 3],
    ]);
    expect(Array.from(batches[1]!.y)).toEqual([2, 0]);
    expect(batches[1]!.paths).toEqual(['p2', 'p3']);
    expect(Array.from(batches[1]!.x.subarray(0, 12))).toEqual(new Array(12).fill(2));
    expect(Array.from(batches[1]!.x.subarray(12))).toEqual(new Array(12).fill(3));
  });

  it('refuses mixed image sizes and bad batch sizes with one line', async () => {
    await expect(lastValueFrom(from([image(0, 2), image(1, 3)]).pipe(batch(2)))).rejects.toThrow(/cannot batch a 3×3 image with 2×2 ones: p1/);
    expect(() => batch(0)).toThrow(/positive integer/);
  });
});
