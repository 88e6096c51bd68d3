import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';

/** The embedded real-photo dataset (Caltech-101 subset). */
export const FIXTURE_ROOT = fileURLToPath(new URL('../fixtures/caltech101-mini/101_ObjectCategories', import.meta.url));

const made: string[] = [];
afterEach(async () => {
  await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A temporary folder removed after the current test. */
export async function temporaryDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rxcnn-test-'));
  made.push(dir);
  return dir;
}

/** Real fixture JPEGs of one class, sorted. */
export async function fixtureImages(cls: string): Promise<string[]> {
  return (await readdir(join(FIXTURE_ROOT, cls))).sort().map((f) => join(FIXTURE_ROOT, cls, f));
}

export async function copyFile(from: string, to: string): Promise<void> {
  await cp(from, to);
}
