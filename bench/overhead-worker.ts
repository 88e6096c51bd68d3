/**
 * The overhead bench's bare loop on one thread: the library calls `decode` makes for each file of
 * its share (squash mode, upright photos), one file at a time, nothing else — or, with `handBack`,
 * also each chunk's pixels posted to the main thread, copied, as a decoding thread posts them.
 */
import { readFileSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { FastResizeFilter, ResizeFit, Transformer } from '@napi-rs/image';
import sharp from 'sharp';
import { rgbFromRgba } from '../src/decode/fast.js';
import { DEFAULT_LIMIT_INPUT_PIXELS } from '../src/decode/pixels.js';
import { DECODE_CHUNK } from '../src/decode/pool.js';

export interface BareJob {
  paths: string[];
  size: number;
  decoder: 'fast' | 'sharp';
  /** Post every chunk's pixels to the main thread (`{ pixels }` messages before `{ done }`). */
  handBack: boolean;
}

export type BareReply = { pixels: Uint8Array[] } | { done: number } | { error: string };

const port = parentPort!;

async function pixelsOf(path: string, size: number, decoder: BareJob['decoder']): Promise<Uint8Array> {
  if (decoder === 'fast') {
    // The fast path's calls, and the conversion of the library's RGBA to the RGB every decoder returns.
    const rgba = new Transformer(readFileSync(path)).fastResize({ width: size, height: size, filter: FastResizeFilter.Bilinear, fit: ResizeFit.Fill }).rawPixelsSync();
    return rgbFromRgba(rgba, { width: size, height: size, size });
  }
  return sharp(path, { limitInputPixels: DEFAULT_LIMIT_INPUT_PIXELS, failOn: 'error' })
    .rotate()
    .resize(size, size, { fit: 'fill' })
    .toColourspace('srgb')
    .removeAlpha()
    .raw({ depth: 'uchar' })
    .toBuffer();
}

async function bare({ paths, size, decoder, handBack }: BareJob): Promise<void> {
  let chunk: Uint8Array[] = [];
  for (const [i, path] of paths.entries()) {
    if (i > 0 && i % DECODE_CHUNK === 0) {
      if (handBack) port.postMessage({ pixels: chunk } satisfies BareReply);
      chunk = [];
      // The event loop turns after every chunk, as on a decoding thread: only then are the library's buffers freed.
      await new Promise((resolve) => setImmediate(resolve));
    }
    chunk.push(await pixelsOf(path, size, decoder));
  }
  if (handBack && chunk.length > 0) port.postMessage({ pixels: chunk } satisfies BareReply);
}

port.on('message', (job: BareJob) => {
  bare(job).then(
    () => port.postMessage({ done: job.paths.length } satisfies BareReply),
    (error: unknown) => port.postMessage({ error: error instanceof Error ? error.message : String(error) } satisfies BareReply),
  );
});
