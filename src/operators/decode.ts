import pLimit from 'p-limit';
import sharp from 'sharp';
import { concatMap, defer, EMPTY, from, map, type OperatorFunction } from 'rxjs';
import type { DecodedImage, Sample, Skip } from '../core/types.js';

/**
 * How an image is brought to the model's square input:
 * - `squash` — resize to size×size ignoring the aspect ratio (Keras' `load_img(target_size)`);
 * - `center-crop` — resize the shorter side to size/0.875, then crop the centre (torchvision's
 *   `Resize(256)` + `CenterCrop(224)`).
 */
export type ResizeMode = 'squash' | 'center-crop';

export interface DecodeOptions {
  size: number;
  mode?: ResizeMode;
  /** Images decoded at once; each one may use `sharp.concurrency()` threads. */
  concurrency?: number;
  /** Refuse images with more pixels than this before decoding them (decompression bombs). */
  limitInputPixels?: number;
  /** Called for every file that cannot be decoded; the file is then left out of the stream. */
  onSkip?: (skip: Skip) => void;
}

export const DEFAULT_LIMIT_INPUT_PIXELS = 100_000_000;

function centerCrop(pixels: Buffer, width: number, height: number, size: number): Uint8Array {
  const left = Math.floor((width - size) / 2);
  const top = Math.floor((height - size) / 2);
  const out = new Uint8Array(size * size * 3);
  for (let row = 0; row < size; row++) {
    const start = ((top + row) * width + left) * 3;
    out.set(pixels.subarray(start, start + size * 3), row * size * 3);
  }
  return out;
}

/** Decodes one file to 8-bit sRGB with exactly 3 channels, EXIF orientation applied. */
export async function decodeImage(sample: Sample, options: DecodeOptions): Promise<DecodedImage> {
  const { size, mode = 'squash', limitInputPixels = DEFAULT_LIMIT_INPUT_PIXELS } = options;
  const side = mode === 'squash' ? size : Math.round(size / 0.875);
  const { data, info } = await sharp(sample.path, { limitInputPixels, failOn: 'error' })
    .rotate()
    .resize(side, side, { fit: mode === 'squash' ? 'fill' : 'outside' })
    .toColourspace('srgb')
    .removeAlpha()
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
  const pixels = mode === 'squash' ? new Uint8Array(data.buffer, data.byteOffset, data.length) : centerCrop(data, info.width, info.height, size);
  return { ...sample, width: size, height: size, pixels };
}

/** One line saying why sharp refused a file. */
export function decodeFailure(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return `cannot decode: ${message.split('\n')[0]}`;
}

/**
 * Decodes samples with sharp, at most `concurrency` at once, emitting in input order so a seeded
 * run is the same run whatever the timing. Files that fail are reported to `onSkip` and dropped.
 */
export function decode(options: DecodeOptions): OperatorFunction<Sample, DecodedImage> {
  return (source) =>
    defer(() => {
      const limit = pLimit(options.concurrency ?? 4);
      return source.pipe(
        map((sample) =>
          limit(() =>
            decodeImage(sample, options).catch((error: unknown) => {
              options.onSkip?.({ path: sample.path, reason: decodeFailure(error) });
              return null;
            }),
          ),
        ),
        concatMap((pending) => from(pending).pipe(concatMap((image) => (image ? [image] : EMPTY)))),
      );
    });
}
