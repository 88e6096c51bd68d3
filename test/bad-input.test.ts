import { execFile } from 'node:child_process';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { firstValueFrom, from, lastValueFrom, toArray } from 'rxjs';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { DecodedImage, Skip } from '../src/core/types.js';
import { decode } from '../src/operators/decode.js';
import { decodeImage } from '../src/decode/pixels.js';
import { discover } from '../src/operators/discover.js';
import { parseProtocol, split } from '../src/operators/split.js';
import type { Report } from '../src/report.js';
import { buildBadDataset, buildUnreadableDataset, pngBomb, type BadDataset, type Probe } from './bad-inputs.js';
import { graph, temporaryDir } from './helpers.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);
const SIZE = 16;
/** Tests that start a Node process (tsx, tfjs, wasm) get longer than the default on a busy machine. */
const CHILD_PROCESS_TIMEOUT = 180_000;

function colourAt(image: DecodedImage, [fx, fy]: Probe['at']): number[] {
  const i = (Math.floor(fy * image.height) * image.width + Math.floor(fx * image.width)) * 3;
  return Array.from(image.pixels.subarray(i, i + 3));
}

const meanAbsDifference = (a: Uint8Array, b: Uint8Array) => a.reduce((sum, v, i) => sum + Math.abs(v - b[i]!), 0) / a.length;


async function dirtyDataset(): Promise<BadDataset> {
  return buildBadDataset(await temporaryDir());
}

describe('bad input', () => {
  it('the generator builds what each case claims to be', async () => {
    const data = await dirtyDataset();
    for (const c of data.cases.filter((c) => c.built)) {
      // Without a pixel limit, so the bomb's header can be read back too.
      expect(await sharp(c.path, { limitInputPixels: false }).metadata(), c.name).toMatchObject(c.built!);
    }
  });

  it('discover keeps every image and skips each junk file, the loop and the empty class once, with its reason', async () => {
    const data = await dirtyDataset();
    const dataset = await firstValueFrom(discover(data.root));
    const samples = dataset.samples.map((s) => s.path);
    const skipped = new Map(dataset.skipped.map((s) => [s.path, s.reason]));
    expect(skipped.size, 'each path skipped once').toBe(dataset.skipped.length);
    for (const c of data.cases) {
      if (c.discover === 'accepted') expect(samples, c.name).toContain(c.path);
      else expect(skipped.get(c.path), c.name).toMatch(c.discover);
    }
    const expectedSkips = data.cases.filter((c) => c.discover !== 'accepted').map((c) => c.path);
    expect(dataset.skipped.map((s) => s.path).sort()).toEqual(expectedSkips.sort());
    expect(samples).toHaveLength(2 * 6 + data.cases.filter((c) => c.discover === 'accepted').length);
    expect(dataset.classes.map((c) => c.id)).toEqual(['lonely', 'mixed', 'photos-a', 'photos-b']);
  });

  it('split leaves out the one-image class and counts its file with a reason', async () => {
    const data = await dirtyDataset();
    const result = await firstValueFrom(discover(data.root).pipe(split({ protocol: parseProtocol(data.protocol), seed: 0 })));
    expect(result.shortClasses).toEqual([{ id: 'lonely', images: 1 }]);
    for (const c of data.cases.filter((c) => c.split)) {
      expect(result.skipped.find((s) => s.path === c.path)?.reason, c.name).toMatch(c.split!);
      expect([...result.train, ...result.test].some((s) => s.path === c.path)).toBe(false);
    }
  });

  it('decode gives size×size×3 with the right colours for every odd image, and one reason for every file it cannot use', async () => {
    const data = await dirtyDataset();
    const files = data.cases.filter((c) => c.decode !== null);
    const skips: Skip[] = [];
    const images = await lastValueFrom(
      from(files.map((c, label) => ({ path: c.path, label }))).pipe(decode({ size: SIZE, concurrency: 4, onSkip: (s) => skips.push(s) }), toArray()),
    );
    expect(images.length + skips.length, 'every file decoded or skipped').toBe(files.length);
    const decoded = new Map(images.map((image) => [image.path, image]));
    const reasons = new Map(skips.map((s) => [s.path, s.reason]));
    for (const c of files) {
      if (c.decode instanceof RegExp) {
        expect(reasons.get(c.path), c.name).toMatch(c.decode);
        continue;
      }
      const image = decoded.get(c.path);
      expect(image, `${c.name} decoded`).toBeDefined();
      expect(image!.pixels, c.name).toHaveLength(SIZE * SIZE * 3);
      for (const probe of c.decode!.probes) {
        const got = colourAt(image!, probe.at);
        got.forEach((v, k) => expect(Math.abs(v - probe.rgb[k]!), `${c.name} at ${probe.at}: ${got} vs ${probe.rgb}`).toBeLessThanOrEqual(16));
      }
      if (c.decode!.like) {
        const reference = await decodeImage({ path: c.decode!.like, label: 0 }, { size: SIZE });
        expect(meanAbsDifference(image!.pixels, reference.pixels), c.name).toBeLessThan(16);
      }
    }
  });

  it('refuses a 20000×20000 header from its metadata, without allocating the image', async () => {
    const dir = await temporaryDir();
    const path = join(dir, 'bomb.png');
    await writeFile(path, pngBomb());
    const bytes = (await readFile(path)).length;
    expect(bytes).toBeLessThan(2000);
    const before = process.memoryUsage().rss;
    const skips: Skip[] = [];
    for (let i = 0; i < 5; i++) {
      const out = await lastValueFrom(from([{ path, label: 0 }]).pipe(decode({ size: SIZE, onSkip: (s) => skips.push(s) }), toArray()));
      expect(out).toEqual([]);
    }
    const grown = process.memoryUsage().rss - before;
    expect(skips.map((s) => s.reason)).toEqual(Array(5).fill('cannot decode: Input image exceeds pixel limit'));
    // Decoding it would take 20000 × 20000 × 3 = 1.2 GB.
    expect(grown).toBeLessThan(64 * 2 ** 20);
    // The refusal comes from the header alone: reading the metadata is already refused...
    await expect(sharp(path).metadata()).rejects.toThrow(/exceeds pixel limit/);
    // ...while without the limit libvips goes on to read the pixel data (and finds it cut short).
    await expect(decodeImage({ path, label: 0 }, { size: SIZE, limitInputPixels: 0 })).rejects.toThrow(/libpng read error/);
  });

  it('a file and a class folder the user may not read are counted skips, for discover and for decode', async () => {
    const dir = await temporaryDir();
    const { root, lockedFile, lockedFolder } = await buildUnreadableDataset(dir);
    // Root reads mode-000 files, so the check runs as an unprivileged user when the tests run as root:
    // the child drops to it once its modules and decoding threads are loaded, since the checkout itself
    // may be closed to other users (a clone in a 0700 temporary folder).
    const asRoot = process.getuid?.() === 0;
    const module = (path: string) => JSON.stringify(new URL(path, import.meta.url).href);
    const script = `
      import { firstValueFrom, from, lastValueFrom, toArray } from 'rxjs';
      const { discover } = await import(${module('../src/operators/discover.ts')});
      const { decode } = await import(${module('../src/operators/decode.ts')});
      const root = ${JSON.stringify(root)};
      // starts the decoding thread that an idle pool hands the next chunk to (the first)
      await lastValueFrom(from([{ path: root + '/watch/ok.jpg', label: 0 }]).pipe(decode({ size: 8 }), toArray()));
      if (${asRoot}) {
        process.setgid(65534);
        process.setuid(65534);
      }
      const dataset = await firstValueFrom(discover(root));
      const decodeSkips = [];
      const decoded = await lastValueFrom(from([${JSON.stringify(lockedFile)}, root + '/watch/ok.jpg'].map((path) => ({ path, label: 0 }))).pipe(decode({ size: 8, onSkip: (s) => decodeSkips.push(s) }), toArray()));
      console.log(JSON.stringify({ uid: process.getuid(), samples: dataset.samples.map((s) => s.path), skipped: dataset.skipped, decoded: decoded.map((i) => i.path), decodeSkips }));
    `;
    const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT }).finally(() => Promise.all([chmod(lockedFolder, 0o755), chmod(lockedFile, 0o644)])); // so the folder can be removed
    const result = JSON.parse(stdout) as { uid: number; samples: string[]; skipped: Skip[]; decoded: string[]; decodeSkips: Skip[] };
    expect(result.uid).not.toBe(0);
    expect(result.samples).toEqual([join(root, 'watch/ok.jpg')]);
    expect(result.skipped).toEqual([
      { path: lockedFolder, reason: 'unreadable folder (EACCES)' },
      { path: lockedFile, reason: 'unreadable (EACCES)' },
    ]);
    expect(result.decoded).toEqual([join(root, 'watch/ok.jpg')]);
    expect(result.decodeSkips).toEqual([{ path: lockedFile, reason: 'unreadable (EACCES)' }]);
  }, CHILD_PROCESS_TIMEOUT);

  it('the CLI runs through the dirty dataset: one line per skipped file, report.json counts skips by reason', async () => {
    const data = await dirtyDataset();
    const out = join(await temporaryDir(), 'run');
    const result = await graph('mobilenetv2', '--data', data.root, '--protocol', data.protocol, '--epochs', '1', '--image-size', '64', '--out', out);
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stderr.split('\n');
    const skipLines = lines.filter((line) => line.startsWith('skipped '));
    const expected = data.cases.filter((c) => c.discover !== 'accepted' || c.split || c.decode instanceof RegExp);
    for (const c of expected) {
      const reason = c.discover instanceof RegExp ? c.discover : (c.split ?? (c.decode as RegExp));
      const mine = skipLines.filter((line) => line.startsWith(`skipped ${c.path}: `));
      expect(mine, c.name).toHaveLength(1);
      expect(mine[0]!.slice(`skipped ${c.path}: `.length), c.name).toMatch(reason);
    }
    expect(skipLines).toHaveLength(expected.length);
    expect(lines.filter((line) => line.startsWith('warning: '))).toEqual([`warning: ${data.protocol} left out 1 class(es) with too few images: lonely (1)`]);

    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as Report;
    expect(report.dataset.skipped).toBe(expected.length);
    expect(report.dataset.skippedFiles.map((s) => s.path).sort()).toEqual(expected.map((c) => c.path).sort());
    const byReason: Record<string, number> = {};
    for (const s of report.dataset.skippedFiles) byReason[s.reason] = (byReason[s.reason] ?? 0) + 1;
    expect(report.dataset.skippedByReason).toEqual(byReason);
    expect(report.dataset.skippedByReason['not an image (content)']).toBe(2);
    expect(report.dataset.skippedByReason['not an image (extension)']).toBe(2);
    // The split holds every file discover accepted, but for the class that was too small.
    expect(report.dataset.train + report.dataset.test).toBe(2 * 6 + data.cases.filter((c) => c.discover === 'accepted' && !c.split).length);
  }, CHILD_PROCESS_TIMEOUT);

  it('the CLI stops with one line and exit code 1 when the dataset root is missing or a file', async () => {
    const dir = await temporaryDir();
    await writeFile(join(dir, 'file.txt'), 'not a folder');
    const [missing, file] = await Promise.all([
      graph('mobilenetv2', '--data', join(dir, 'nope'), '--out', join(dir, 'run1')),
      graph('mobilenetv2', '--data', join(dir, 'file.txt'), '--out', join(dir, 'run2')),
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr.split('\n').filter((l) => l.startsWith('rxcnn: '))).toEqual([`rxcnn: dataset folder not found: ${join(dir, 'nope')}`]);
    expect(missing.stderr).not.toMatch(/ at /);
    expect(missing.stderr).not.toMatch(/^backend:/m); // checked before the backend starts
    expect(file.code).toBe(1);
    expect(file.stderr.split('\n').filter((l) => l.startsWith('rxcnn: '))).toEqual([`rxcnn: dataset path is not a folder: ${join(dir, 'file.txt')}`]);
  }, CHILD_PROCESS_TIMEOUT);
});
