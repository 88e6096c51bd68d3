import { FastResizeFilter, ResizeFit, Transformer } from '@napi-rs/image';
import type { FastHeader } from './header.js';
import { uninitializedBytes } from '../core/bytes.js';

/** The output geometry: resize to `width`×`height`, then keep the centred `size`×`size`. */
export interface Geometry {
  width: number;
  height: number;
  size: number;
}

/**
 * Decodes a JPEG or PNG that `route` let through with @napi-rs/image (Rust: the image crate's
 * decoders, fast_image_resize's SIMD convolution), EXIF orientation applied, resized bilinearly —
 * with the filter widened by the scale when shrinking, i.e. antialiased, as PIL's and
 * `tf.image.resize(antialias=True)`'s bilinear are — to `geometry`, and returns 8-bit RGB,
 * `size`×`size`, row-major. Synchronous, on the calling thread, as PIL decodes: it runs on the
 * decoding threads (`src/decode/pool.ts`), where handing each photo to libuv's thread pool and back
 * cost ~0.3 ms of CPU per photo in thread wake-ups, a third of the decode.
 */
export function decodeFast(bytes: Uint8Array, header: FastHeader, geometry: Geometry): Uint8Array {
  const image = new Transformer(bytes);
  // Orientation comes from our own header read: the library would otherwise parse EXIF again.
  if (header.orientation !== 1) image.rotate(header.orientation);
  image.fastResize({ width: geometry.width, height: geometry.height, filter: FastResizeFilter.Bilinear, fit: ResizeFit.Fill });
  // fastResize always hands back RGBA (opaque here: files with alpha go to sharp).
  const rgba = image.rawPixelsSync();
  if (rgba.length !== geometry.width * geometry.height * 4) throw new Error(`fast decoder returned ${rgba.length} bytes for ${geometry.width}×${geometry.height} RGBA`);
  return rgbFromRgba(rgba, geometry);
}

const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** The library's RGBA as the decoder's RGB: alpha dropped and the centred size×size kept, in one pass. */
export function rgbFromRgba(rgba: Uint8Array, { width, height, size }: Geometry): Uint8Array {
  const left = Math.floor((width - size) / 2);
  const top = Math.floor((height - size) / 2);
  const out = uninitializedBytes(size * size * 3);
  // A full-width image is one run of pixels; a crop is one run per row.
  if (left === 0 && width === size) packRgb(rgba, top * width * 4, out, 0, size * size);
  else for (let y = 0; y < size; y++) packRgb(rgba, ((top + y) * width + left) * 4, out, y * size * 3, size);
  return out;
}

/**
 * Copies `count` RGBA pixels from `rgba` at byte `from` as RGB into `out` at byte `to`: four pixels
 * (16 bytes in, 12 out) as three 32-bit words where the offsets allow — byte by byte this copy
 * alone cost a fifth of the fast path's CPU per image — and the rest byte by byte.
 */
function packRgb(rgba: Uint8Array, from: number, out: Uint8Array, to: number, count: number): void {
  let i = from;
  let o = to;
  let left = count;
  if (littleEndian && (rgba.byteOffset + i) % 4 === 0 && (out.byteOffset + o) % 4 === 0) {
    const wordsIn = new Uint32Array(rgba.buffer, rgba.byteOffset + i, (count >> 2) * 4);
    const wordsOut = new Uint32Array(out.buffer, out.byteOffset + o, (count >> 2) * 3);
    for (let k = 0, w = 0; k < wordsIn.length; k += 4, w += 3) {
      const p0 = wordsIn[k]!;
      const p1 = wordsIn[k + 1]!;
      const p2 = wordsIn[k + 2]!;
      const p3 = wordsIn[k + 3]!;
      wordsOut[w] = (p0 & 0xffffff) | (p1 << 24);
      wordsOut[w + 1] = ((p1 >>> 8) & 0xffff) | (p2 << 16);
      wordsOut[w + 2] = ((p2 >>> 16) & 0xff) | (p3 << 8);
    }
    const done = (count >> 2) * 4;
    i += done * 4;
    o += done * 3;
    left -= done;
  }
  for (; left > 0; left--, i += 4) {
    out[o++] = rgba[i]!;
    out[o++] = rgba[i + 1]!;
    out[o++] = rgba[i + 2]!;
  }
}
