import { access } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where downloaded weights live, like Keras' `~/.keras/models`; `RXCNN_CACHE` overrides it. */
export function cacheDir(): string {
  return process.env['RXCNN_CACHE'] ?? join(homedir(), '.cache', 'rxcnn');
}

/** Weight files committed with rxcnn, so the default job runs offline. */
export function embeddedWeights(file: string): string {
  return fileURLToPath(new URL(`../../fixtures/weights/${file}`, import.meta.url));
}

const exists = (path: string) => access(path).then(
  () => true,
  () => false,
);

export interface KnownWeights {
  file: string;
  url: string;
}

/**
 * The first of `choices` (best first) that is embedded or already in the cache; otherwise one line
 * saying what to fetch for the first choice and where to put it.
 */
export async function knownWeightsFile(choices: readonly KnownWeights[]): Promise<string> {
  for (const { file } of choices) {
    for (const candidate of [embeddedWeights(file), join(cacheDir(), 'weights', file)]) {
      if (await exists(candidate)) return candidate;
    }
  }
  const { file, url } = choices[0]!;
  throw new Error(`weights ${file} are not available offline: download ${url} into ${join(cacheDir(), 'weights')}/ or pass --weights <file>`);
}
