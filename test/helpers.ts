import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
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

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);

/** Runs `npm run graph -- …` as a user would (without npm's banner): exit code and output. */
export async function graph(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/cli/graph.ts', ...args], { cwd: ROOT, env: { ...process.env, CI: 'true' } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
