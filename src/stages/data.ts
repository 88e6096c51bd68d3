import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { lastValueFrom } from 'rxjs';
import { writeJsonAtomic } from '../core/files.js';
import type { Split } from '../core/types.js';
import { discover } from '../operators/discover.js';
import { measureSource, type Meter } from '../operators/measure.js';
import { manifestOf, parseProtocol, split, type Manifest } from '../operators/split.js';
import { subset } from '../operators/subset.js';

/** What decides the split: the same values give the same files in train and test. */
export interface DataOptions {
  data: string;
  testData?: string;
  protocol: string;
  exclude: string[];
  limit?: number;
  seed: number;
}

/** A dataset discovered, subset and split, with its manifest and the notices to give. */
export interface PreparedData {
  split: Split;
  manifest: Manifest;
  /** One-line notices (classes left out for too few images). */
  warnings: string[];
}

/**
 * discover → subset → split: the run's data. Fails with one line when nothing is left to train on.
 * Files passed over are in `split.skipped`.
 */
export async function prepareData(options: DataOptions, meter?: Meter): Promise<PreparedData> {
  const found = (root: string) => (meter ? measureSource(meter, 'discover', discover(root, { exclude: options.exclude })) : discover(root, { exclude: options.exclude }));
  const protocol = parseProtocol(options.testData ? 'external' : options.protocol);
  const testData = options.testData ? found(options.testData).pipe(subset(options.limit, options.seed)) : undefined;
  const data = await lastValueFrom(found(options.data).pipe(subset(options.limit, options.seed), split({ protocol, seed: options.seed, ...(testData ? { testData } : {}) })));
  if (data.train.length === 0) throw new Error(`the split (${data.protocol}) left no training images`);
  const warnings = data.shortClasses.length > 0 ? [`${data.protocol} left out ${data.shortClasses.length} class(es) with too few images: ${data.shortClasses.map((c) => `${c.id} (${c.images})`).join(', ')}`] : [];
  return { split: data, manifest: manifestOf(data), warnings };
}

/**
 * Writes `out/manifest.json`; resuming, first refuses a split other than the one the checkpoint
 * was trained on.
 */
export async function writeManifest(out: string, manifest: Manifest, resuming: boolean): Promise<void> {
  const path = join(out, 'manifest.json');
  if (resuming) {
    const saved = await readFile(path, 'utf8').catch(() => null);
    if (saved !== null && JSON.stringify(JSON.parse(saved)) !== JSON.stringify(manifest)) {
      throw new Error(`the dataset or split differs from the one the checkpoint in ${dirname(path)} was trained on (${path}); resume with the same data, or start a new run`);
    }
  }
  await writeJsonAtomic(path, manifest);
}
