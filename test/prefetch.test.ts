import { concatMap, delay, lastValueFrom, map, mergeMap, of, tap, timer, toArray, type Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { batch } from '../src/operators/batch.js';
import { decode } from '../src/operators/decode.js';
import { prefetch } from '../src/operators/prefetch.js';
import { fixtureImages } from './helpers.js';

/**
 * Feeds `n` items through a "decoder" taking 1 time unit per item (4 at once) into a consumer
 * taking 10 per item, in virtual time, and returns the most decoded-but-unconsumed items seen.
 */
function peakBacklog(n: number, bound: number | null): number {
  let decoded = 0;
  let consumed = 0;
  let peak = 0;
  new TestScheduler((a, b) => expect(a).toEqual(b)).run(() => {
    const items = Array.from({ length: n }, (_, i) => i);
    const feed = bound === null ? null : prefetch(bound);
    const source: Observable<number> = feed ? feed.source(items) : of(...items);
    const done = source.pipe(
      mergeMap((i) => of(i).pipe(delay(1)), 4),
      tap(() => (decoded++, (peak = Math.max(peak, decoded - consumed)))),
      concatMap((i) => timer(10).pipe(map(() => i))),
      tap(() => consumed++),
      feed ? feed.consumed(() => 1) : (s) => s,
      toArray(),
    );
    done.subscribe((all) => expect(all).toHaveLength(n));
  });
  expect(consumed).toBe(n);
  return peak;
}

describe('prefetch', () => {
  it('bounds decoded-but-unconsumed items with a consumer 10× slower, whatever the dataset size', () => {
    expect(peakBacklog(100, 8)).toBeLessThanOrEqual(8);
    expect(peakBacklog(1000, 8)).toBeLessThanOrEqual(8);
    expect(peakBacklog(1000, 8)).toBe(peakBacklog(100, 8));
  });

  it('is needed: without it the backlog grows with the dataset', () => {
    expect(peakBacklog(100, null)).toBeGreaterThan(50);
    expect(peakBacklog(1000, null)).toBeGreaterThan(500);
  });

  it('holds the bound with real decoding, batching and a slow consumer, and delivers every image', async () => {
    const paths = (await fixtureImages('airplanes')).concat(await fixtureImages('ketch'));
    const bound = 8;
    const feed = prefetch(bound);
    let decoded = 0;
    let consumed = 0;
    let peak = 0;
    const batches = await lastValueFrom(
      feed.source(paths.map((path, label) => ({ path, label }))).pipe(
        decode({ size: 32, concurrency: 4, onSkip: feed.drop }),
        tap(() => (decoded++, (peak = Math.max(peak, decoded - consumed)))),
        batch(4),
        concatMap((b) => timer(20).pipe(map(() => b))),
        tap((b) => (consumed += b.paths.length)),
        feed.consumed((b) => b.paths.length),
        toArray(),
      ),
    );
    expect(batches.flatMap((b) => b.paths)).toEqual(paths);
    expect(peak).toBeLessThanOrEqual(bound);
    expect(feed.peak).toBeLessThanOrEqual(bound);
    expect(feed.outstanding).toBe(0);
  });

  it('returns the credit of dropped items so a stream with failures still finishes', async () => {
    const feed = prefetch(2);
    const out = await lastValueFrom(
      feed.source([1, 2, 3, 4, 5, 6]).pipe(
        mergeMap((i) => (i % 2 ? (feed.drop(), []) : [i])),
        feed.consumed(() => 1),
        toArray(),
      ),
    );
    expect(out).toEqual([2, 4, 6]);
    expect(feed.outstanding).toBe(0);
  });

  it('refuses a bound below one, over-release (keeping its count) and a second source at once', () => {
    expect(() => prefetch(0)).toThrow(/positive integer/);
    const feed = prefetch(2);
    expect(() => feed.release(1)).toThrow(/more items released than admitted/);
    expect(feed.outstanding).toBe(0);
    const first = feed.source([1, 2, 3]).subscribe();
    expect(feed.outstanding).toBe(2);
    let refused: unknown;
    feed.source([4]).subscribe({ error: (e: unknown) => (refused = e) });
    expect(String(refused)).toMatch(/one source at a time/);
    first.unsubscribe();
  });
});
