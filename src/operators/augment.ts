import { map, type MonoTypeOperatorFunction } from 'rxjs';
import { randomFor } from '../core/random.js';
import { datasetRelative } from './discover.js';
import type { DecodedImage } from '../core/types.js';

export interface AugmentOptions {
  seed: number;
  /** Mixed into every image's random choices so each epoch sees other views. */
  epoch: number;
  /** Random resized crop: the crop keeps this range of the image's area (torchvision: 0.08–1). */
  scale?: [number, number];
  /** …with an aspect ratio in this range. */
  ratio?: [number, number];
  flip?: boolean;
  /** Brightness and contrast change by a random factor in [1-j, 1+j]. */
  brightness?: number;
  contrast?: number;
  /**
   * The dataset's root: each image's choices are keyed by its path relative to it, so the same
   * folder typed as a relative or an absolute path (or resumed from elsewhere) augments the same.
   */
  root?: string;
}

export const DEFAULT_AUGMENT = { scale: [0.5, 1], ratio: [3 / 4, 4 / 3], flip: true, brightness: 0.2, contrast: 0.2 } as const;

interface Crop {
  left: number;
  top: number;
  width: number;
  height: number;
}

function randomCrop(size: number, scale: [number, number], ratio: [number, number], random: () => number): Crop {
  for (let attempt = 0; attempt < 10; attempt++) {
    const area = size * size * (scale[0] + random() * (scale[1] - scale[0]));
    const logRatio = Math.log(ratio[0]) + random() * (Math.log(ratio[1]) - Math.log(ratio[0]));
    const aspect = Math.exp(logRatio);
    const width = Math.round(Math.sqrt(area * aspect));
    const height = Math.round(Math.sqrt(area / aspect));
    if (width > 0 && height > 0 && width <= size && height <= size) {
      return { left: Math.floor(random() * (size - width + 1)), top: Math.floor(random() * (size - height + 1)), width, height };
    }
  }
  return { left: 0, top: 0, width: size, height: size };
}

/**
 * Crops `crop` out of a square RGB image and resizes it back to the full size (bilinear),
 * mirroring it when `flip`, and applies `out = (in - mean) * contrast + mean * brightness`.
 */
function render(image: DecodedImage, crop: Crop, flip: boolean, brightness: number, contrast: number): Uint8Array {
  const { width: size, pixels } = image;
  let sum = 0;
  for (let i = 0; i < pixels.length; i++) sum += pixels[i]!;
  const mean = sum / pixels.length;
  const out = new Uint8Array(pixels.length);
  const clamped = new Uint8ClampedArray(out.buffer);
  const sx = crop.width / size;
  const sy = crop.height / size;
  for (let y = 0; y < size; y++) {
    const fy = Math.min(crop.height - 1, Math.max(0, (y + 0.5) * sy - 0.5)) + crop.top;
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, crop.top + crop.height - 1);
    const wy = fy - y0;
    for (let x = 0; x < size; x++) {
      const ox = flip ? size - 1 - x : x;
      const fx = Math.min(crop.width - 1, Math.max(0, (ox + 0.5) * sx - 0.5)) + crop.left;
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, crop.left + crop.width - 1);
      const wx = fx - x0;
      for (let c = 0; c < 3; c++) {
        const p00 = pixels[(y0 * size + x0) * 3 + c]!;
        const p01 = pixels[(y0 * size + x1) * 3 + c]!;
        const p10 = pixels[(y1 * size + x0) * 3 + c]!;
        const p11 = pixels[(y1 * size + x1) * 3 + c]!;
        const value = (p00 * (1 - wx) + p01 * wx) * (1 - wy) + (p10 * (1 - wx) + p11 * wx) * wy;
        clamped[(y * size + x) * 3 + c] = (value - mean) * contrast + mean * brightness;
      }
    }
  }
  return out;
}

/**
 * Training-time augmentation of square images: random resized crop, horizontal flip and
 * brightness/contrast jitter. Each image's choices come from (seed, epoch, path) alone (the path relative to `root` when given), so a run
 * is reproducible whatever order or concurrency the images arrive with. Leave it out of
 * evaluation graphs.
 */
export function augment(options: AugmentOptions): MonoTypeOperatorFunction<DecodedImage> {
  const scale = options.scale ?? [...DEFAULT_AUGMENT.scale];
  const ratio = options.ratio ?? [...DEFAULT_AUGMENT.ratio];
  const flip = options.flip ?? DEFAULT_AUGMENT.flip;
  const brightness = options.brightness ?? DEFAULT_AUGMENT.brightness;
  const contrast = options.contrast ?? DEFAULT_AUGMENT.contrast;
  return map((image) => {
    if (image.width !== image.height) throw new Error(`augment expects square images, got ${image.width}×${image.height}`);
    const random = randomFor(options.seed, 'augment', options.epoch, options.root === undefined ? image.path : datasetRelative(options.root, image.path));
    const crop = randomCrop(image.width, scale, ratio, random);
    const mirror = flip && random() < 0.5;
    const b = 1 + (random() * 2 - 1) * brightness;
    const c = 1 + (random() * 2 - 1) * contrast;
    return { ...image, pixels: render(image, crop, mirror, b, c) };
  });
}

/** The image mirrored left to right (a fixed view, e.g. for test-time or cached-feature views). */
export function mirror(image: DecodedImage): DecodedImage {
  const { width, height, pixels } = image;
  const out = new Uint8Array(pixels.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const from = (y * width + x) * 3;
      out.set(pixels.subarray(from, from + 3), (y * width + (width - 1 - x)) * 3);
    }
  }
  return { ...image, pixels: out };
}
