import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { uninitializedBytes } from '../core/bytes.js';
import type { DecodedImage, Sample } from '../core/types.js';
import { decodeFast, type Geometry } from './fast.js';
import { route, sniffImageFormat } from './header.js';

/**
 * How an image is brought to the model's square input:
 * - `squash` — resize to size×size ignoring the aspect ratio (Keras' `load_img(target_size)`);
 * - `center-crop` — resize the shorter side to size/0.875, then crop the centre (torchvision's
 *   `Resize(256)` + `CenterCrop(224)`).
 */
export type ResizeMode = 'squash' | 'center-crop';

/**
 * Which decoder turns files into pixels:
 * - `fast` — @napi-rs/image, bilinear (antialiased) resize, for 8-bit JPEG and PNG without alpha
 *   or a colour profile other than sRGB (`src/decode/header.ts` decides); other files are skipped;
 * - `sharp` — libvips, lanczos3, every format, colour-managed (CMYK, ICC profiles, 16 bits, alpha);
 * - `auto` — `fast` where it applies, sharp for every other file and for any file `fast` fails on.
 */
export type Decoder = 'auto' | 'fast' | 'sharp';
export const DECODERS: readonly Decoder[] = ['auto', 'fast', 'sharp'];

/** `text` as a decoder, or a one-line error naming the valid ones (the CLI's and the benches' `--decoder`). */
export function parseDecoder(text: string): Decoder {
  if (!(DECODERS as readonly string[]).includes(text)) throw new Error(`unknown decoder '${text}'; valid: ${DECODERS.join(', ')}`);
  return text as Decoder;
}

/** How files become pixels: what every decoding thread needs to know, and nothing it cannot be sent. */
export interface PixelOptions {
  size: number;
  mode?: ResizeMode;
  /** Refuse images with more pixels than this before decoding them (decompression bombs); 0: no limit, as in sharp. */
  limitInputPixels?: number;
  /** Default `auto`. */
  decoder?: Decoder;
}

export const DEFAULT_LIMIT_INPUT_PIXELS = 100_000_000;

/**
 * Above this many pixels (640×470) `auto` hands a JPEG or PNG to sharp. The fast decoder decodes the
 * whole image and holds it several times over (decoded, copied, widened to RGBA), while sharp decodes
 * a large JPEG at 1/2, 1/4 or 1/8 of its size; measured to 224 px on 2 cores, sharp is as fast from
 * about 0.1–0.5 MP on (depending on the allocator, see README) and 5–40× faster at 1–8 MP. 99% of
 * Caltech-101's photos are below it.
 */
export const FAST_MAX_PIXELS = 300_000;

/** What sharp says when libvips left no message. */
const LOST_MESSAGE = 'Unknown error';

function centerCrop(pixels: Buffer, width: number, height: number, size: number): Uint8Array {
  const left = Math.floor((width - size) / 2);
  const top = Math.floor((height - size) / 2);
  const out = uninitializedBytes(size * size * 3);
  for (let row = 0; row < size; row++) {
    const start = ((top + row) * width + left) * 3;
    out.set(pixels.subarray(start, start + size * 3), row * size * 3);
  }
  return out;
}

/** A file that is not a decodable image; its message is the one-line reason for the skip. */
export class UndecodableImage extends Error {}

/**
 * Reads a whole image file synchronously, as a DataLoader worker does: an asynchronous read is four
 * round trips through libuv's thread pool (open, stat, read, close), ~0.3 ms of CPU per photo on two
 * cores — a third of what the fast decoder spends on the photo itself — where a read from the page
 * cache takes ~0.03 ms.
 */
export function readImageFile(path: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new UndecodableImage(`unreadable (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  if (bytes.length === 0) throw new UndecodableImage('empty file (0 bytes)');
  // Only the formats rxcnn discovers reach libvips: it would also parse SVG, PDF or FITS named .jpg.
  if (!sniffImageFormat(bytes.subarray(0, 12))) throw new UndecodableImage('not an image (content)');
  return bytes;
}

/**
 * Decodes one file to 8-bit sRGB with exactly 3 channels, EXIF orientation applied, through the
 * decoder `options.decoder` chooses for it. An animated GIF/WebP or a multi-page TIFF gives its
 * first frame; alpha is dropped (not blended), as PIL's `convert('RGB')` does.
 */
export async function decodeImage(sample: Sample, options: PixelOptions): Promise<DecodedImage> {
  return { ...sample, width: options.size, height: options.size, pixels: await decodePixels(readImageFile(sample.path), options) };
}

/** `decodeImage` on a file's bytes already read (and known to start like an image): size×size×3 pixels. */
export async function decodePixels(bytes: Buffer, options: PixelOptions): Promise<Uint8Array> {
  const { size, mode = 'squash', limitInputPixels = DEFAULT_LIMIT_INPUT_PIXELS, decoder = 'auto' } = options;
  if (decoder !== 'sharp') {
    const routed = route(bytes);
    if (!routed.fast && decoder === 'fast') throw new UndecodableImage(`cannot decode: not for the fast decoder (${routed.reason}); --decoder auto hands such files to sharp`);
    if (routed.fast) {
      const { width, height, orientation } = routed.header;
      // Refused from the header, before a pixel is allocated (sharp says the same for its files).
      if (limitInputPixels > 0 && width * height > limitInputPixels) throw new UndecodableImage('cannot decode: Input image exceeds pixel limit');
      if (decoder === 'fast' || width * height <= FAST_MAX_PIXELS) {
        const upright = orientation >= 5 ? { width: height, height: width } : { width, height };
        try {
          return decodeFast(bytes, routed.header, geometry(upright, size, mode));
        } catch (error) {
          // auto: a file the fast decoder cannot read may still be one libjpeg/libpng can.
          if (decoder === 'fast') throw error;
        }
      }
    }
  }
  return decodeWithSharp(bytes, size, mode, limitInputPixels);
}

/**
 * The resize that gives a size×size image: `squash` straight to it; `center-crop` the shorter side
 * to size/0.875 (the longer in proportion, truncated as torchvision's Resize does), then the crop.
 */
function geometry(image: { width: number; height: number }, size: number, mode: ResizeMode): Geometry {
  if (mode === 'squash') return { width: size, height: size, size };
  const side = Math.round(size / 0.875);
  const short = Math.min(image.width, image.height);
  const long = Math.max(side, Math.floor((side * Math.max(image.width, image.height)) / short));
  return image.width <= image.height ? { width: side, height: long, size } : { width: long, height: side, size };
}

/** sharp: rotate → resize (lanczos3) → sRGB → 3 channels, colour-managed, every format libvips reads. */
async function decodeWithSharp(bytes: Buffer, size: number, mode: ResizeMode, limitInputPixels: number): Promise<Uint8Array> {
  const side = mode === 'squash' ? size : Math.round(size / 0.875);
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
  if (mode === 'center-crop') return centerCrop(data, info.width, info.height, size);
  // Into an array buffer of exactly its size: sharp's may hold more, and a decoding thread sends a view's whole buffer.
  const pixels = uninitializedBytes(data.length);
  pixels.set(data);
  return pixels;
}

/** One line saying why a file could not be decoded. */
export function decodeFailure(error: unknown): string {
  if (error instanceof UndecodableImage) return error.message;
  const message = error instanceof Error ? error.message : String(error);
  return `cannot decode: ${message.split('\n')[0]}`;
}

