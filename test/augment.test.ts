import { firstValueFrom, of } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { DecodedImage } from '../src/core/types.js';
import { augment, mirror } from '../src/operators/augment.js';
import { decodeImage } from '../src/decode/pixels.js';
import { FIXTURE_ROOT, fixtureImages } from './helpers.js';

const photo = async (): Promise<DecodedImage> => decodeImage({ path: (await fixtureImages('bonsai'))[0]!, label: 2 }, { size: 48 });
const run = (image: DecodedImage, options: Parameters<typeof augment>[0]) => firstValueFrom(of(image).pipe(augment(options)));

describe('augment', () => {
  it('is a function of (seed, epoch, path): same inputs, same pixels', async () => {
    const image = await photo();
    const a = await run(image, { seed: 1, epoch: 1 });
    const b = await run(image, { seed: 1, epoch: 1 });
    expect(a.pixels).toEqual(b.pixels);
    expect(a).toMatchObject({ path: image.path, label: 2, width: 48, height: 48 });
  });

  it('shows other views in other epochs and seeds', async () => {
    const image = await photo();
    const a = await run(image, { seed: 1, epoch: 1 });
    expect(a.pixels).not.toEqual((await run(image, { seed: 1, epoch: 2 })).pixels);
    expect(a.pixels).not.toEqual((await run(image, { seed: 2, epoch: 1 })).pixels);
    expect(a.pixels).not.toEqual(image.pixels);
  });

  it('with every transform off, returns the image unchanged', async () => {
    const image = await photo();
    const out = await run(image, { seed: 1, epoch: 1, scale: [1, 1], ratio: [1, 1], flip: false, brightness: 0, contrast: 0 });
    expect(out.pixels).toEqual(image.pixels);
  });

  it('flip alone mirrors rows exactly', async () => {
    const image = await photo();
    // keyed by the path relative to the fixtures' root: with the absolute path, whether a seed flips depended on where the checkout is
    const options = { scale: [1, 1] as [number, number], ratio: [1, 1] as [number, number], flip: true, brightness: 0, contrast: 0, root: FIXTURE_ROOT };
    for (let seed = 0; seed < 8; seed++) {
      const out = await run(image, { seed, epoch: 0, ...options });
      if (out.pixels.every((v, i) => v === image.pixels[i])) continue;
      const row = (img: Uint8Array, y: number, x: number) => Array.from(img.subarray((y * 48 + x) * 3, (y * 48 + x) * 3 + 3));
      expect(row(out.pixels, 10, 0)).toEqual(row(image.pixels, 10, 47));
      return;
    }
    throw new Error('no seed out of 8 flipped the image');
  });
});

describe('mirror', () => {
  it('reverses every row and nothing else; twice is the identity', async () => {
    const image = await photo();
    const once = mirror(image);
    const px = (img: Uint8Array, y: number, x: number) => Array.from(img.subarray((y * 48 + x) * 3, (y * 48 + x) * 3 + 3));
    expect(px(once.pixels, 7, 0)).toEqual(px(image.pixels, 7, 47));
    expect(px(once.pixels, 30, 12)).toEqual(px(image.pixels, 30, 35));
    expect(mirror(once).pixels).toEqual(image.pixels);
  });
});
