import { access } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A published weights file and how to check it. */
export interface KnownWeights {
  file: string;
  url: string;
  sha256?: string;
  /** Keras publishes MD5 sums for some files. */
  md5?: string;
}

/** Where downloaded weights live, like Keras' `~/.keras/models`; `RXCNN_CACHE` overrides it. */
export function cacheDir(): string {
  return process.env['RXCNN_CACHE'] ?? join(homedir(), '.cache', 'rxcnn');
}

export const weightsCacheDir = () => join(cacheDir(), 'weights');

/** Weight files committed with rxcnn, so the default job runs offline. */
export function embeddedWeights(file: string): string {
  return fileURLToPath(new URL(`../../fixtures/weights/${file}`, import.meta.url));
}

export const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

/** The first of `choices` that is in `dir` (when given), embedded or already in the cache, or null. */
export async function localWeightsFile(choices: readonly KnownWeights[], dir?: string): Promise<string | null> {
  for (const { file } of choices) {
    for (const candidate of [...(dir ? [join(dir, file)] : []), embeddedWeights(file), join(weightsCacheDir(), file)]) {
      if (await exists(candidate)) return candidate;
    }
  }
  return null;
}
