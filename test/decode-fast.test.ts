import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { from, lastValueFrom, toArray } from 'rxjs';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { parseCommandLine } from '../src/cli/graph.js';
import type { Sample, Skip } from '../src/core/types.js';
import { decodeFast } from '../src/decode/fast.js';
import { route } from '../src/decode/header.js';
import { createModel, disposeClassifier } from '../src/models/index.js';
import { batch } from '../src/operators/batch.js';
import { decode } from '../src/operators/decode.js';
import { decodeImage, FAST_MAX_PIXELS, type Decoder } from '../src/decode/pixels.js';
import { embed } from '../src/operators/embed.js';
import { BLUE, GREEN, pngBomb, quadrants, RED, WHITE, type Rgb } from './bad-inputs.js';
import { fixtureImages, temporaryDir } from './helpers.js';
import { nearestClassMean } from './nearest-class-mean.js';

const CLASSES = ['Faces_easy', 'Leopards', 'accordion', 'airplanes', 'bonsai', 'car_side', 'chandelier', 'hawksbill', 'ketch', 'watch'];
const FOUR: [Rgb, Rgb, Rgb, Rgb] = [RED, GREEN, BLUE, WHITE];

const meanAbsoluteDifference = (a: Uint8Array, b: Uint8Array) => {
  expect(a.length).toBe(b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
};

/** The JPEG without its Huffman tables, as motion-JPEG frames are stored: decoders must assume the standard ones. */
function withoutHuffmanTables(jpeg: Buffer): Buffer {
  const parts = [jpeg.subarray(0, 2)];
  let at = 2;
  while (jpeg[at + 1] !== 0xda) {
    const end = at + 2 + jpeg.readUInt16BE(at + 2);
    if (jpeg[at + 1] !== 0xc4) parts.push(jpeg.subarray(at, end));
    at = end;
  }
  parts.push(jpeg.subarray(at));
  return Buffer.concat(parts);
}

/** Writes `bytes` and decodes them with each decoder: pixels, or the skip reason. */
async function decodeEach(dir: string, name: string, bytes: Buffer, size = 16): Promise<Record<Decoder, Uint8Array | string>> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  let reason = '';
  const outcome = (decoder: Decoder) =>
    lastValueFrom(from([{ path, label: 0 }]).pipe(decode({ size, decoder, onSkip: (s) => (reason = s.reason) }), toArray())).then((images) => images[0]?.pixels ?? reason);
  return { auto: await outcome('auto'), fast: await outcome('fast'), sharp: await outcome('sharp') };
}

describe('--decoder', () => {
  it('takes auto, fast or sharp; auto by default', async () => {
    expect(await parseCommandLine(['mobilenetv2'])).toMatchObject({ options: {} });
    expect(await parseCommandLine(['mobilenetv2', '--decoder', 'sharp'])).toMatchObject({ options: { decoder: 'sharp' } });
    await expect(parseCommandLine(['mobilenetv2', '--decoder', 'pil'])).rejects.toThrow(/^unknown decoder 'pil'; valid: auto, fast, sharp$/);
  });
});

describe('decode: which files take the fast path', () => {
  it('routes every fixture photo, progressive JPEGs, sRGB-tagged JPEGs and plain PNGs to the fast decoder', async () => {
    const photos = (await Promise.all(CLASSES.map(fixtureImages))).flat();
    for (const path of photos) expect(route(await readFile(path)).fast, path).toBe(true);
    const base = quadrants(40, 30, FOUR);
    for (const bytes of [
      await base.clone().jpeg({ progressive: true }).toBuffer(),
      await base.clone().withIccProfile('srgb').jpeg().toBuffer(),
      await base.clone().toColourspace('b-w').jpeg().toBuffer(),
      await base.clone().png().toBuffer(),
      await base.clone().png({ palette: true, colours: 4 }).toBuffer(),
    ]) {
      expect(route(bytes)).toMatchObject({ fast: true, header: { width: 40, height: 30, orientation: 1 } });
    }
  });

  it('routes CMYK, ICC profiles other than sRGB, 16 bits, alpha, other formats and cut-off files to sharp, with the reason', async () => {
    const base = quadrants(40, 30, FOUR);
    const jpeg = await base.clone().jpeg().toBuffer();
    const sof = jpeg.indexOf(Buffer.from([0xff, 0xc0]));
    const patched = (at: number, value: number) => Buffer.from(jpeg).fill(value, at, at + 1);
    const cases: Array<[Buffer, RegExp]> = [
      [await base.clone().toColourspace('cmyk').jpeg().toBuffer(), /^CMYK JPEG$/],
      [await base.clone().withIccProfile('p3').jpeg().toBuffer(), /^ICC profile other than sRGB$/],
      [await base.clone().withIccProfile('p3').png().toBuffer(), /^PNG with an ICC profile$/],
      [await base.clone().toColourspace('rgb16').png().toBuffer(), /^16-bit PNG$/],
      [await quadrants(40, 30, FOUR, 128).png().toBuffer(), /^PNG with alpha$/],
      [await base.clone().ensureAlpha(0.5).png({ palette: true }).toBuffer(), /^PNG with (alpha|transparency)$/],
      [await base.clone().webp().toBuffer(), /^not JPEG or PNG$/],
      [await base.clone().tiff().toBuffer(), /^not JPEG or PNG$/],
      [await base.clone().gif().toBuffer(), /^not JPEG or PNG$/],
      [patched(sof + 4, 12), /^12-bit JPEG$/], // the frame's sample precision
      [patched(sof + 1, 0xc9), /^lossless, hierarchical or arithmetic-coded JPEG$/],
      [jpeg.subarray(0, jpeg.length - 40), /^JPEG without its end marker/],
      [jpeg.subarray(0, 30), /^JPEG header cut short$/],
    ];
    for (const [bytes, reason] of cases) {
      const routed = route(bytes);
      expect(routed.fast).toBe(false);
      if (!routed.fast) expect(routed.reason).toMatch(reason);
    }
  });

  it('sharp decodes what it is routed, pixel for pixel as --decoder sharp; --decoder fast skips it with the reason', async () => {
    const dir = await temporaryDir();
    const [photo] = await fixtureImages('Leopards');
    const cases: Record<string, Buffer> = {
      'cmyk.jpg': await sharp(photo!).toColourspace('cmyk').jpeg().toBuffer(),
      'p3.jpg': await sharp(photo!).withIccProfile('p3').jpeg().toBuffer(),
      'deep.png': await quadrants(40, 30, FOUR).toColourspace('rgb16').png().toBuffer(),
      'alpha.png': await quadrants(40, 30, FOUR, 200).png().toBuffer(),
      'image.webp': await sharp(photo!).webp().toBuffer(),
    };
    for (const [name, bytes] of Object.entries(cases)) {
      const out = await decodeEach(dir, name, bytes);
      expect(out.auto, name).toBeInstanceOf(Uint8Array);
      expect(out.auto, name).toEqual(out.sharp);
      expect(out.fast, name).toMatch(/^cannot decode: not for the fast decoder \(.+\); --decoder auto hands such files to sharp$/);
    }
  });

  it(`hands a JPEG above ${FAST_MAX_PIXELS / 1e6} MP to sharp, which decodes it scaled down (--decoder fast decodes it whole)`, async () => {
    const dir = await temporaryDir();
    const big = await sharp({ create: { width: 700, height: 500, channels: 3, background: { r: 10, g: 120, b: 240 } } }).jpeg().toBuffer();
    const out = await decodeEach(dir, 'big.jpg', big);
    expect(out.auto).toEqual(out.sharp);
    expect(out.fast).toBeInstanceOf(Uint8Array);
  });
});

describe('decode: the fast path', () => {
  it('falls back to sharp for a JPEG it cannot read (a motion-JPEG frame without Huffman tables), never skipping it', async () => {
    const dir = await temporaryDir();
    const [photo] = await fixtureImages('watch');
    // Standard tables (no optimised coding), so the frame decodes right without them, as libjpeg assumes.
    const bytes = withoutHuffmanTables(await sharp(photo!).jpeg({ quality: 90, optimiseCoding: false }).toBuffer());
    const routed = route(bytes);
    expect(routed.fast).toBe(true);
    if (routed.fast) expect(() => decodeFast(bytes, routed.header, { width: 16, height: 16, size: 16 })).toThrow(/table/i);
    const out = await decodeEach(dir, 'mjpeg.jpg', bytes);
    expect(out.sharp).toBeInstanceOf(Uint8Array);
    expect(out.auto).toEqual(out.sharp);
    expect(out.fast).toMatch(/^cannot decode: .*table/i);
    // And it is the photo: close to decoding the original file.
    expect(meanAbsoluteDifference(out.sharp as Uint8Array, (await decodeImage({ path: photo!, label: 0 }, { size: 16, decoder: 'sharp' })).pixels)).toBeLessThan(4);
  });

  it('applies every EXIF orientation (1–8) as sharp does', async () => {
    const dir = await temporaryDir();
    for (let orientation = 1; orientation <= 8; orientation++) {
      const bytes = await quadrants(60, 40, FOUR).jpeg({ quality: 95 }).withMetadata({ orientation }).toBuffer();
      const routed = route(bytes);
      expect(routed.fast && routed.header.orientation).toBe(orientation);
      const out = await decodeEach(dir, `o${orientation}.jpg`, bytes, 20);
      // A wrong turn or mirror swaps whole quadrants (differences of ~100 levels and more).
      const mad = meanAbsoluteDifference(out.fast as Uint8Array, out.sharp as Uint8Array);
      expect(mad, `orientation ${orientation}`).toBeLessThan(12);
      expect(out.auto).toEqual(out.fast);
    }
  });

  it('refuses a 20000×20000 PNG or JPEG header before allocating a pixel', async () => {
    const dir = await temporaryDir();
    const jpeg = await sharp((await fixtureImages('watch'))[0]!).jpeg().toBuffer();
    const sof = jpeg.indexOf(Buffer.from([0xff, 0xc0]));
    const jpegBomb = Buffer.from(jpeg);
    jpegBomb.writeUInt16BE(20_000, sof + 5);
    jpegBomb.writeUInt16BE(20_000, sof + 7);
    for (const [name, bytes] of [['bomb.png', pngBomb()], ['bomb.jpg', jpegBomb]] as const) {
      expect(route(bytes)).toMatchObject({ fast: true, header: { width: 20_000, height: 20_000 } });
      const before = process.memoryUsage().rss;
      const skips: Skip[] = [];
      await writeFile(join(dir, name), bytes);
      for (let i = 0; i < 5; i++) {
        const out = await lastValueFrom(from([{ path: join(dir, name), label: 0 }]).pipe(decode({ size: 16, decoder: 'fast', onSkip: (s) => skips.push(s) }), toArray()));
        expect(out).toEqual([]);
      }
      expect(skips.map((s) => s.reason)).toEqual(Array(5).fill('cannot decode: Input image exceeds pixel limit'));
      // Decoding it would take 20000 × 20000 × 3 = 1.2 GB (and the fast decoder's RGBA copy 1.6 GB more).
      expect(process.memoryUsage().rss - before).toBeLessThan(64 * 2 ** 20);
    }
  });

  it('squash and center-crop give the geometry sharp gives', async () => {
    const dir = await temporaryDir();
    const wide = await quadrants(90, 30, FOUR).png().toBuffer();
    const tall = await quadrants(30, 90, FOUR).png().toBuffer();
    for (const [name, bytes] of [['wide.png', wide], ['tall.png', tall]] as const) {
      await writeFile(join(dir, name), bytes);
      // 7: rows of 21 bytes, so the RGBA→RGB copy takes its byte-by-byte path too.
      for (const [mode, size] of [['squash', 24], ['center-crop', 24], ['squash', 7], ['center-crop', 7]] as const) {
        const [fast, slow] = await Promise.all((['fast', 'sharp'] as const).map((decoder) => decodeImage({ path: join(dir, name), label: 0 }, { size, mode, decoder })));
        expect(fast!.pixels).toHaveLength(size * size * 3);
        expect(meanAbsoluteDifference(fast!.pixels, slow!.pixels), `${name} ${mode} ${size}`).toBeLessThan(8);
      }
    }
  });

  it('gives pixels close to sharp on the fixture photos (mean absolute difference printed)', async () => {
    const photos = (await Promise.all(CLASSES.map(fixtureImages))).flat();
    for (const mode of ['squash', 'center-crop'] as const) {
      let sum = 0;
      let worst = 0;
      for (const path of photos) {
        const [fast, slow] = await Promise.all((['fast', 'sharp'] as const).map((decoder) => decodeImage({ path, label: 0 }, { size: 224, mode, decoder })));
        const mad = meanAbsoluteDifference(fast!.pixels, slow!.pixels);
        sum += mad;
        worst = Math.max(worst, mad);
      }
      console.log(`fast (bilinear) vs sharp (lanczos3), ${mode}, ${photos.length} fixture photos at 224: mean absolute difference ${(sum / photos.length).toFixed(2)} levels, worst photo ${worst.toFixed(2)}`);
      // Bilinear is softer than lanczos3: ~5.6 levels on average, most at edges, up to ~17 on a
      // photo of fine lines stretched from 170 to 224 rows (where lanczos3 rings); a colour, decoding
      // or geometry error would be tens of levels. (Against PIL's bilinear, the fast path differs by
      // 0.27 levels on these photos, and sharp by 5.6.)
      expect(sum / photos.length).toBeLessThan(7);
      expect(worst).toBeLessThan(20);
    }
  });

  it('loses no accuracy: nearest-class-mean on ImageNet MobileNetV2-0.5 features, fast vs sharp', async () => {
    const samples: Sample[] = (await Promise.all(CLASSES.map(async (cls, label) => (await fixtureImages(cls)).slice(0, 20).map((path) => ({ path, label }))))).flat();
    const model = await createModel('mobilenetv2', { classes: CLASSES.length, alpha: 0.5, inputSize: 224 });
    const accuracy: Partial<Record<Decoder, number>> = {};
    try {
      for (const decoder of ['fast', 'sharp'] as const) {
        const batches = await lastValueFrom(from(samples).pipe(decode({ size: 224, decoder }), batch(20), embed(model), toArray()));
        const vectors = batches.flatMap((b) => Array.from({ length: b.shape[0] }, (_, r) => b.features.slice(r * b.shape[1], (r + 1) * b.shape[1])));
        accuracy[decoder] = nearestClassMean(vectors, samples.map((s) => s.label));
      }
    } finally {
      disposeClassifier(model);
    }
    console.log(`leave-one-out nearest-class-mean top-1 on ${samples.length} fixture photos: fast ${(100 * accuracy.fast!).toFixed(1)}%, sharp ${(100 * accuracy.sharp!).toFixed(1)}%`);
    expect(accuracy.sharp).toBeGreaterThan(0.85);
    // At most two of the 200 photos may change sides.
    expect(accuracy.fast).toBeGreaterThanOrEqual(accuracy.sharp! - 0.01);
  }, 240_000); // 400 MobileNetV2 forward passes on wasm
});
