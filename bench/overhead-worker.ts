/**
 * The overhead bench's bare loop on one thread: the library calls `decode` makes for each file of
 * its share (squash mode, upright photos), one file at a time, nothing else.
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
}

const port = parentPort!;

async function bare({ paths, size, decoder }: BareJob): Promise<void> {
  for (const [i, path] of paths.entries()) {
    // The event loop turns after every chunk, as on a decoding thread: only then are the library's buffers freed.
    if (i > 0 && i % DECODE_CHUNK === 0) await new Promise((resolve) => setImmediate(resolve));
    if (decoder === 'fast') {
      // The fast path's calls, and the conversion of the library's RGBA to the RGB every decoder returns.
      const rgba = new Transformer(readFileSync(path)).fastResize({ width: size, height: size, filter: FastResizeFilter.Bilinear, fit: ResizeFit.Fill }).rawPixelsSync();
      rgbFromRgba(rgba, { width: size, height: size, size });
    } else {
      await sharp(path, { limitInputPixels: DEFAULT_LIMIT_INPUT_PIXELS, failOn: 'error' })
        .rotate()
        .resize(size, size, { fit: 'fill' })
        .toColourspace('srgb')
        .removeAlpha()
        .raw({ depth: 'uchar' })
        .toBuffer();
    }
  }
}

port.on('message', (job: BareJob) => {
  bare(job).then(
    () => port.postMessage({ done: job.paths.length }),
    (error: unknown) => port.postMessage({ error: error instanceof Error ? error.message : String(error) }),
  );
});
