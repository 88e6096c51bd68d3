import { readFile } from 'node:fs/promises';
import pLimit from 'p-limit';
import sharp from 'sharp';
import { concatMap, defer, EMPTY, from, map, type OperatorFunction } from 'rxjs';
import type { DecodedImage, Sample, Skip } from '../core/types.js';
import { sniffImageFormat } from './discover.js';

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

/** What sharp says when libvips left no message. */
const LOST_MESSAGE = 'Unknown error';

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

/** A file that is not a decodable image; its message is the one-line reason for the skip. */
export class UndecodableImage extends Error {}

async function readImageFile(path: string): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new UndecodableImage(`unreadable (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  if (bytes.length === 0) throw new UndecodableImage('empty file (0 bytes)');
  // Only the formats rxcnn discovers reach libvips: it would also parse SVG, PDF or FITS named .jpg.
  if (!sniffImageFormat(bytes.subarray(0, 12))) throw new UndecodableImage('not an image (content)');
  return bytes;
}

/**
 * Decodes one file to 8-bit sRGB with exactly 3 channels, EXIF orientation applied. An animated
 * GIF/WebP or a multi-page TIFF gives its first frame; alpha is dropped (not blended), as PIL's
 * `convert('RGB')` does.
 */
export async function decodeImage(sample: Sample, options: DecodeOptions): Promise<DecodedImage> {
  const { size, mode = 'squash', limitInputPixels = DEFAULT_LIMIT_INPUT_PIXELS } = options;
  const side = mode === 'squash' ? size : Math.round(size / 0.875);
  const bytes = await readImageFile(sample.path);
  const convert = () =>
    sharp(bytes, { limitInputPixels, failOn: 'error', pages: 1 })
      .rotate()
      .resize(side, side, { fit: mode === 'squash' ? 'fill' : 'outside' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  // libvips keeps one error buffer for all threads: under concurrent decodes a failure's message can
  // be cleared before sharp reads it ("Unknown error"). A second try usually keeps it; else the
  // header says what the file claims to be.
  const isLost = (error: unknown) => error instanceof Error && error.message === LOST_MESSAGE;
  const { data, info } = await convert()
    .catch((error: unknown) => (isLost(error) ? convert() : Promise.reject(error)))
    .catch(async (error: unknown) => {
      if (!isLost(error)) throw error;
      const header = await sharp(bytes).metadata().catch(() => null);
      throw new UndecodableImage(`cannot decode: ${header ? `damaged ${header.format} data (${header.width}×${header.height} by its header)` : 'damaged header'}`);
    });
  if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
  const pixels = mode === 'squash' ? new Uint8Array(data.buffer, data.byteOffset, data.length) : centerCrop(data, info.width, info.height, size);
  return { ...sample, width: size, height: size, pixels };
}

/** One line saying why a file could not be decoded. */
export function decodeFailure(error: unknown): string {
  if (error instanceof UndecodableImage) return error.message;
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
