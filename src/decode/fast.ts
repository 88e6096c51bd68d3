import { FastResizeFilter, ResizeFit, Transformer } from '@napi-rs/image';
import type { FastHeader } from './header.js';

/** The output geometry: resize to `width`×`height`, then keep the centred `size`×`size`. */
export interface Geometry {
  width: number;
  height: number;
  size: number;
}

/**
 * Decodes a JPEG or PNG that `route` let through with @napi-rs/image (Rust: the image crate's
 * decoders, fast_image_resize's SIMD convolution) on a libuv thread, EXIF orientation applied,
 * resized bilinearly — with the filter widened by the scale when shrinking, i.e. antialiased, as
 * PIL's and `tf.image.resize(antialias=True)`'s bilinear are — to `geometry`, and returns 8-bit
 * RGB, `size`×`size`, row-major.
 */
export async function decodeFast(bytes: Uint8Array, header: FastHeader, geometry: Geometry): Promise<Uint8Array> {
  const image = new Transformer(bytes);
  // Orientation comes from our own header read: the library would otherwise parse EXIF again.
  if (header.orientation !== 1) image.rotate(header.orientation);
  image.fastResize({ width: geometry.width, height: geometry.height, filter: FastResizeFilter.Bilinear, fit: ResizeFit.Fill });
  // fastResize always hands back RGBA (opaque here: files with alpha go to sharp).
  const rgba = await image.rawPixels();
  if (rgba.length !== geometry.width * geometry.height * 4) throw new Error(`fast decoder returned ${rgba.length} bytes for ${geometry.width}×${geometry.height} RGBA`);
  return rgbaToRgbCrop(rgba, geometry);
}

/** Drops alpha and keeps the centred size×size in one pass. */
function rgbaToRgbCrop(rgba: Uint8Array, { width, height, size }: Geometry): Uint8Array {
  const left = Math.floor((width - size) / 2);
  const top = Math.floor((height - size) / 2);
  // Every byte is written below: no need to zero it first (a zeroed allocation is a memset and,
  // at this size, fresh pages from the kernel for every image).
  const out: Uint8Array = Buffer.allocUnsafe(size * size * 3);
  let o = 0;
  for (let y = 0; y < size; y++) {
    let i = ((top + y) * width + left) * 4;
    for (let x = 0; x < size; x++, i += 4) {
      out[o++] = rgba[i]!;
      out[o++] = rgba[i + 1]!;
      out[o++] = rgba[i + 2]!;
    }
  }
  return out;
}
