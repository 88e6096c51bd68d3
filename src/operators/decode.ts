import { Observable, type OperatorFunction } from 'rxjs';
import type { DecodedImage, Sample, Skip } from '../core/types.js';
import type { PixelOptions } from '../decode/pixels.js';
import { DECODE_CHUNK, decodePool, DEFAULT_DECODE_THREADS, type DecodeOutcome, type DecodeRequest } from '../decode/pool.js';

export interface DecodeOptions extends PixelOptions {
  /** Decoding threads, each decoding one image at a time (default: one per core). */
  concurrency?: number;
  /** Called for every file that cannot be decoded; the file is then left out of the stream. */
  onSkip?: (skip: Skip) => void;
}

/** Chunks queued per thread, so a thread never waits for the event loop between two chunks. */
const CHUNKS_PER_THREAD = 2;

/**
 * Decodes samples (`decodeImage`: 8-bit sRGB, 3 channels, EXIF orientation applied, `size`×`size`)
 * on `concurrency` decoding threads (`src/decode/pool.ts`), emitting in input order so a seeded run
 * is the same run whatever the timing. Files that fail are reported to `onSkip`, in input order,
 * and dropped. Samples are taken as they come: a `prefetch` source upstream bounds how many are
 * decoded ahead.
 *
 * ```ts
 * from(samples).pipe(decode({ size: 224, onSkip: (s) => console.warn(s.path, s.reason) }), batch(32))
 * ```
 */
export function decode(options: DecodeOptions): OperatorFunction<Sample, DecodedImage> {
  const { concurrency = DEFAULT_DECODE_THREADS, onSkip, ...pixelOptions } = options;
  return (source) =>
    new Observable<DecodedImage>((subscriber) => {
      const pool = decodePool(concurrency);
      const samples = new Map<number, Sample>();
      const undispatched: DecodeRequest[] = [];
      const outcomes = new Map<number, DecodeOutcome>();
      let received = 0;
      let emitted = 0;
      let chunksOut = 0;
      let sourceDone = false;
      let dispatchQueued = false;

      let emitting = false;
      const emitReady = () => {
        // Downstream may give credits back while an image is being emitted, and a prefetch source
        // then sends more samples or completes from inside that call: the outer loop carries on,
        // and completes only once the image has gone all the way down.
        if (emitting) return;
        emitting = true;
        for (let outcome = outcomes.get(emitted); outcome && !subscriber.closed; outcome = outcomes.get(emitted)) {
          const sample = samples.get(emitted)!;
          outcomes.delete(emitted);
          samples.delete(emitted);
          emitted++;
          if ('pixels' in outcome) subscriber.next({ ...sample, width: pixelOptions.size, height: pixelOptions.size, pixels: outcome.pixels });
          else onSkip?.({ path: sample.path, reason: outcome.reason });
        }
        emitting = false;
        if (sourceDone && emitted === received) subscriber.complete();
      };
      const dispatch = () => {
        dispatchQueued = false;
        while (undispatched.length > 0 && chunksOut < pool.size * CHUNKS_PER_THREAD && !subscriber.closed) {
          chunksOut++;
          pool.run(undispatched.splice(0, DECODE_CHUNK), pixelOptions).then(
            (done) => {
              chunksOut--;
              for (const outcome of done) outcomes.set(outcome.index, outcome);
              emitReady();
              dispatch();
            },
            (error: unknown) => subscriber.error(error),
          );
        }
      };
      const subscription = source.subscribe({
        next: (sample) => {
          samples.set(received, sample);
          undispatched.push({ index: received++, path: sample.path });
          // Samples that arrive together (a prefetch window opening) leave in full chunks.
          if (!dispatchQueued) {
            dispatchQueued = true;
            queueMicrotask(dispatch);
          }
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => {
          sourceDone = true;
          emitReady();
        },
      });
      return () => {
        subscription.unsubscribe();
        undispatched.length = 0;
      };
    });
}
