import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lastValueFrom } from 'rxjs';
import type { Sample } from '../src/core/types.js';
import { discover } from '../src/operators/discover.js';
import { subset } from '../src/operators/subset.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const FIXTURES = join(ROOT, 'fixtures/caltech101-mini');
/** The shared Caltech-101 copy next to the repository; absent on most clones. */
export const CALTECH101 = join(ROOT, '../shared/data/caltech101/101_ObjectCategories');

export interface BenchImages {
  samples: Sample[];
  /** Where they come from, for the printout: the folder, how many distinct files, whether cycled. */
  source: string;
  distinct: number;
}

/**
 * `count` real JPEGs: a class-balanced seeded subset of ../shared Caltech-101 when it is there,
 * else the embedded fixtures, cycled when they are fewer (and the printout says so).
 */
export async function benchImages(count: number, options: { preferFixtures?: boolean } = {}): Promise<BenchImages> {
  const root = !options.preferFixtures && existsSync(CALTECH101) ? CALTECH101 : FIXTURES;
  const dataset = await lastValueFrom(discover(root, { exclude: ['BACKGROUND_Google'] }).pipe(subset(count, 0)));
  const pool = dataset.samples;
  if (pool.length === 0) throw new Error(`no images found in ${root}`);
  const samples = Array.from({ length: count }, (_, i) => pool[i % pool.length]!);
  const distinct = Math.min(pool.length, count);
  const cycled = pool.length < count ? `, cycled to ${count}` : '';
  const absent = root === FIXTURES && !options.preferFixtures ? ' (../shared/data/caltech101 is absent, so the embedded fixtures)' : '';
  return { samples, source: `${distinct} distinct JPEGs from ${root}${cycled}${absent}`, distinct };
}
