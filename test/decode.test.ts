import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { from, lastValueFrom, tap, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { Skip } from '../src/core/types.js';
import { batch } from '../src/operators/batch.js';
import { decode } from '../src/operators/decode.js';
import { prefetch } from '../src/operators/prefetch.js';
import { decodeImage } from '../src/decode/pixels.js';
import { runningDecodingThreads } from '../src/decode/pool.js';
import { fixtureImages, temporaryDir } from './helpers.js';

/** A width×height image whose left half is red and right half blue. */
function halves(width: number, height: number, channels: 3 | 4 = 3): Sharp {
  const pixels = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * channels;
      pixels[i + (x < width / 2 ? 0 : 2)] = 255;
      if (channels === 4) pixels[i + 3] = 128;
    }
  }
  return sharp(pixels, { raw: { width, height, channels } });
}

const rgbAt = (img: { pixels: Uint8Array; width: number }, x: number, y: number) => Array.from(img.pixels.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));

describe('decode', () => {
  it('turns a real JPEG into size×size 8-bit RGB', async () => {
    const [path] = await fixtureImages('Leopards');
    const image = await decodeImage({ path: path!, label: 3 }, { size: 64 });
    expect(image).toMatchObject({ path, label: 3, width: 64, height: 64 });
    expect(image.pixels).toHaveLength(64 * 64 * 3);
    expect(Math.max(...image.pixels)).toBeGreaterThan(100);
  });

  it('forces three channels from grayscale, alpha and 16-bit PNGs', async () => {
    const dir = await temporaryDir();
    await halves(20, 10).toColourspace('b-w').png().toFile(join(dir, 'gray.png'));
    await halves(20, 10, 4).png().toFile(join(dir, 'alpha.png'));
    await halves(20, 10).toColourspace('rgb16').png().toFile(join(dir, 'deep.png'));
    for (const name of ['gray.png', 'alpha.png', 'deep.png']) {
      const image = await decodeImage({ path: join(dir, name), label: 0 }, { size: 8 });
      expect(image.pixels).toHaveLength(8 * 8 * 3);
    }
    const deep = await decodeImage({ path: join(dir, 'deep.png'), label: 0 }, { size: 8 });
    expect(rgbAt(deep, 0, 0)).toEqual([255, 0, 0]);
  });

  it('applies EXIF orientation', async () => {
    const dir = await temporaryDir();
    // Stored 40×20, red left / blue right; orientation 6 means "rotate 90° clockwise to display".
    await halves(40, 20).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toFile(join(dir, 'rotated.jpg'));
    const image = await decodeImage({ path: join(dir, 'rotated.jpg'), label: 0 }, { size: 20 });
    const [top, bottom] = [rgbAt(image, 5, 2), rgbAt(image, 5, 17)];
    expect(top[0]).toBeGreaterThan(200);
    expect(top[2]).toBeLessThan(50);
    expect(bottom[2]).toBeGreaterThan(200);
    expect(bottom[0]).toBeLessThan(50);
  });

  it('squash keeps the whole image; center-crop keeps the middle', async () => {
    const dir = await temporaryDir();
    await halves(60, 20).png().toFile(join(dir, 'wide.png'));
    const squashed = await decodeImage({ path: join(dir, 'wide.png'), label: 0 }, { size: 16, mode: 'squash' });
    expect(rgbAt(squashed, 1, 8)).toEqual([255, 0, 0]);
    expect(rgbAt(squashed, 14, 8)).toEqual([0, 0, 255]);
    const cropped = await decodeImage({ path: join(dir, 'wide.png'), label: 0 }, { size: 16, mode: 'center-crop' });
    expect(cropped.pixels).toHaveLength(16 * 16 * 3);
    expect(rgbAt(cropped, 1, 8)[0]).toBeGreaterThan(200);
    expect(rgbAt(cropped, 14, 8)[2]).toBeGreaterThan(200);
  });

  it.each([1, 3])('decodes on %i thread(s) what decodeImage decodes, in input order, and reports undecodable files in their place', async (threads) => {
    const dir = await temporaryDir();
    const photos = (await fixtureImages('car_side')).slice(0, 30);
    await writeFile(join(dir, 'broken.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]));
    const samples = photos.map((path, i) => ({ path, label: i }));
    // More files than one chunk per thread, with the broken one in the middle of a chunk.
    samples.splice(5, 0, { path: join(dir, 'broken.jpg'), label: 99 });
    const events: string[] = [];
    const images = await lastValueFrom(
      from(samples).pipe(
        decode({ size: 32, concurrency: threads, onSkip: (s) => events.push(`skip ${s.reason}`) }),
        tap((image) => events.push(`image ${image.label}`)),
        toArray(),
      ),
    );
    expect(images.map((i) => i.label)).toEqual(photos.map((_, i) => i));
    expect(events[5]).toMatch(/^skip cannot decode: /);
    expect(events.filter((e) => e.startsWith('skip'))).toHaveLength(1);
    for (const image of [images[0]!, images[17]!, images[29]!]) expect(image.pixels).toEqual((await decodeImage(image, { size: 32 })).pixels);
  });

  it('shares the decoding threads between thread counts: asking for 1, 3 and 2 runs 3 threads', async () => {
    const samples = (await fixtureImages('car_side')).slice(0, 24).map((path, label) => ({ path, label }));
    const before = runningDecodingThreads();
    for (const concurrency of [1, 3, 2]) {
      const images = await lastValueFrom(from(samples).pipe(decode({ size: 16, concurrency }), toArray()));
      expect(images.map((i) => i.label)).toEqual(samples.map((s) => s.label));
    }
    expect(runningDecodingThreads()).toBe(Math.max(before, 3));
  });

  it('refuses a thread count that is not a positive integer, in one line', async () => {
    const [photo] = await fixtureImages('car_side');
    await expect(lastValueFrom(from([{ path: photo!, label: 0 }]).pipe(decode({ size: 16, concurrency: 0 })))).rejects.toThrow('decoding threads must be a positive integer, got 0');
  });

  it('completes only after the last image went all the way down, when taking it lets a prefetch source finish', async () => {
    const photos = (await fixtureImages('car_side')).slice(0, 12);
    const pull = prefetch(4);
    // Each batch gives its credits back from inside the emission of its last image: the source then
    // admits the next samples, or completes, re-entrantly.
    const batches = await lastValueFrom(pull.source(photos.map((path, label) => ({ path, label }))).pipe(decode({ size: 16 }), batch(4), pull.consumed((b) => b.y.length), toArray()));
    expect(batches.map((b) => Array.from(b.y))).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]);
  });

  it('refuses images above limitInputPixels before decoding them', async () => {
    const dir = await temporaryDir();
    await halves(400, 300).png().toFile(join(dir, 'big.png'));
    const skips: Skip[] = [];
    const out = await lastValueFrom(from([{ path: join(dir, 'big.png'), label: 0 }]).pipe(decode({ size: 8, limitInputPixels: 1000, onSkip: (s) => skips.push(s) }), toArray()));
    expect(out).toEqual([]);
    expect(skips[0]!.reason).toMatch(/pixel limit/i);
  });
});
