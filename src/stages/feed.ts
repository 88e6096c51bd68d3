import { map, type Observable } from 'rxjs';
import type { ImageBatch, Sample, Skip } from '../core/types.js';
import { augment, mirror } from '../operators/augment.js';
import { batch } from '../operators/batch.js';
import { decode } from '../operators/decode.js';
import type { Decoder, ResizeMode } from '../decode/pixels.js';
import { measure, type Meter } from '../operators/measure.js';
import { prefetch } from '../operators/prefetch.js';

/** Anything that says how many images it carries (batches, predictions, features). */
export type Counted = { y: Int32Array } | { labels: Int32Array };

export const countImages = (p: Counted): number => ('y' in p ? p.y : p.labels).length;

export interface FeedOptions {
  /** Images decoded ahead of the consumer at most (the prefetch bound); at least one batch. */
  bound: number;
  batch: number;
  size: number;
  resize?: ResizeMode;
  /** Which decoder reads the files (`auto`: the fast one where it applies, else sharp). */
  decoder?: Decoder;
  /** Decoding threads. */
  concurrency?: number;
  /** `augment` (training), `mirror` (a fixed view) or the images as they are. */
  prepare?: 'plain' | 'augment' | 'mirror';
  /** With `augment`: its random choices derive from (seed, epoch, path relative to root). */
  augment?: { seed: number; epoch: number; root: string };
  meter?: Meter;
  /** Files that cannot be decoded (their credit is given back here too). */
  onSkip?: (skip: Skip) => void;
}

/**
 * decode → [augment | mirror] → batch → `consume`, under a prefetch bound: both ends of the
 * protocol are wired here (undecodable files `drop` their credit, every value out of `consume`
 * gives back its images' credits), so a caller cannot forget one and stall or grow without bound.
 */
export function imageFeed<T extends Counted>(samples: readonly Sample[], options: FeedOptions, consume: (batches: Observable<ImageBatch>) => Observable<T>): Observable<T> {
  // a batch is only emitted once full: a bound below it would wait forever for images it never admits
  if (options.bound < options.batch) throw new Error(`the prefetch bound (${options.bound} images) is smaller than a batch (${options.batch}): the feed would stall; raise --prefetch or lower --batch`);
  if (options.prepare === 'augment' && !options.augment) throw new Error('imageFeed: augment needs { seed, epoch, root }');
  const timed = <I, O>(name: string, operator: (source: Observable<I>) => Observable<O>, size?: (o: O) => number) => (options.meter ? measure(options.meter, name, operator, size) : operator);
  const pull = prefetch(options.bound);
  const decoded = pull.source(samples).pipe(
    timed(
      'decode',
      decode({
        size: options.size,
        ...(options.resize ? { mode: options.resize } : {}),
        ...(options.decoder ? { decoder: options.decoder } : {}),
        ...(options.concurrency ? { concurrency: options.concurrency } : {}),
        onSkip: (skip) => {
          options.onSkip?.(skip);
          pull.drop();
        },
      }),
    ),
  );
  const images = options.prepare === 'augment' ? decoded.pipe(timed('augment', augment(options.augment!))) : options.prepare === 'mirror' ? decoded.pipe(map(mirror)) : decoded;
  return consume(images.pipe(timed('batch', batch(options.batch), countImages))).pipe(pull.consumed<T>(countImages));
}
