import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeJsonAtomic } from '../core/files.js';
import type { TestPredictions, Tta } from './full-pass.js';

/** A run's per-image test probabilities, beside its report: what compare's ensemble row averages. */
export const TEST_PREDICTIONS = 'test-predictions.json';

/** {@link TEST_PREDICTIONS}: `probs` is base64 of little-endian float32 rows (`paths.length` × `classNames.length`), paths in the split's test order. */
export interface TestPredictionsFile {
  version: 1;
  /** Which probabilities these are: the plain image's, or (`flip`) averaged with its mirror's. */
  tta: Tta;
  classNames: string[];
  paths: string[];
  labels: number[];
  probs: string;
}

export async function writeTestPredictions(out: string, predictions: TestPredictions, classNames: string[], tta: Tta): Promise<void> {
  const { paths, labels, probs } = predictions;
  const file: TestPredictionsFile = { version: 1, tta, classNames, paths, labels: Array.from(labels), probs: Buffer.from(probs.buffer, probs.byteOffset, probs.byteLength).toString('base64') };
  await writeJsonAtomic(join(out, TEST_PREDICTIONS), file);
}

export interface LoadedTestPredictions extends TestPredictions {
  tta: Tta;
  classNames: string[];
}

/** The test predictions a run in `dir` kept; fails with one line when it has none (a run from before they were kept). */
export async function readTestPredictions(dir: string): Promise<LoadedTestPredictions> {
  const path = join(dir, TEST_PREDICTIONS);
  const text = await readFile(path, 'utf8').catch(() => null);
  if (text === null) throw new Error(`${path} is missing: the run kept no test predictions (runs before the ensemble row did not); run that model again`);
  const file = JSON.parse(text) as TestPredictionsFile;
  const bytes = Buffer.from(file.probs, 'base64');
  const probs = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  if (probs.length !== file.paths.length * file.classNames.length) throw new Error(`${path} is damaged: ${probs.length} probabilities for ${file.paths.length} images × ${file.classNames.length} classes`);
  return { tta: file.tta, classNames: file.classNames, classes: file.classNames.length, paths: file.paths, labels: Int32Array.from(file.labels), probs };
}
