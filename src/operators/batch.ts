import { bufferCount, map, type OperatorFunction } from 'rxjs';
import type { DecodedImage, ImageBatch } from '../core/types.js';
import { uninitializedBytes } from '../core/bytes.js';

/** Packs images into NHWC batches of `size`; the last, smaller batch is kept. */
export function batch(size: number): OperatorFunction<DecodedImage, ImageBatch> {
  if (!Number.isInteger(size) || size < 1) throw new Error(`batch size must be a positive integer, got ${size}`);
  return (source) =>
    source.pipe(
      bufferCount(size),
      map((images) => {
        const { width, height } = images[0]!;
        const stride = width * height * 3;
        const x = uninitializedBytes(images.length * stride);
        images.forEach((image, i) => {
          if (image.width !== width || image.height !== height) {
            throw new Error(`cannot batch a ${image.width}×${image.height} image with ${width}×${height} ones: ${image.path}`);
          }
          x.set(image.pixels, i * stride);
        });
        return {
          x,
          shape: [images.length, height, width, 3],
          y: Int32Array.from(images, (image) => image.label),
          paths: images.map((image) => image.path),
        };
      }),
    );
}
