import { Observable, tap, type MonoTypeOperatorFunction } from 'rxjs';

/**
 * Demand-driven feeding. RxJS pushes: `mergeMap` queues overflow without limit and
 * `from(iterable)` emits as fast as it can, so a slow consumer lets decoded images pile up.
 * A `Prefetch` closes the loop with credits: its source admits an item only while fewer than
 * `bound` admitted items are still unconsumed, and the sink gives a credit back for every item it
 * has finished with (or that was dropped on the way). Memory is thus bounded by `bound` items,
 * whatever the dataset size, while up to `bound` items are decoded ahead of the consumer.
 *
 * ```ts
 * const feed = prefetch(4 * 32);
 * feed.source(samples).pipe(decode({ size, onSkip: feed.drop }), batch(32), train(model), feed.consumed((r) => r.paths.length))
 * ```
 */
export interface Prefetch {
  readonly bound: number;
  /** Admitted items not yet consumed or dropped. */
  readonly outstanding: number;
  /** The most items ever outstanding at once. */
  readonly peak: number;
  /** Emits `items` in order, each only once a credit is free. */
  source<T>(items: Iterable<T>): Observable<T>;
  /** Gives back the credits of `count` items the consumer is done with. */
  release(count: number): void;
  /** Gives back the credit of one item dropped upstream of the consumer (e.g. an undecodable file). */
  drop: () => void;
  /** Sink-side operator: after each value, gives back `count(value)` credits. */
  consumed<T>(count: (value: T) => number): MonoTypeOperatorFunction<T>;
}

export function prefetch(bound: number): Prefetch {
  if (!Number.isInteger(bound) || bound < 1) throw new Error(`prefetch bound must be a positive integer, got ${bound}`);
  let outstanding = 0;
  let peak = 0;
  let pump: (() => void) | null = null;

  const release = (count: number) => {
    if (count > outstanding) throw new Error('prefetch: more items released than admitted');
    outstanding -= count;
    pump?.();
  };

  return {
    bound,
    get outstanding() {
      return outstanding;
    },
    get peak() {
      return peak;
    },
    source<T>(items: Iterable<T>) {
      return new Observable<T>((subscriber) => {
        if (pump) throw new Error('prefetch: one source at a time; make a new prefetch for another pass');
        const iterator = items[Symbol.iterator]();
        let pumping = false;
        let done = false;
        // Re-entrant releases (a synchronous consumer) only mark work; the loop below does it.
        pump = () => {
          if (pumping || done) return;
          pumping = true;
          while (!done && outstanding < bound && !subscriber.closed) {
            const next = iterator.next();
            if (next.done) {
              done = true;
              subscriber.complete();
              break;
            }
            outstanding++;
            peak = Math.max(peak, outstanding);
            subscriber.next(next.value);
          }
          pumping = false;
        };
        pump();
        return () => {
          done = true;
          pump = null;
        };
      });
    },
    release,
    drop: () => release(1),
    consumed<T>(count: (value: T) => number) {
      return tap((value: T) => release(count(value)));
    },
  };
}
