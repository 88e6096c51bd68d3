import { defer, EMPTY, Observable, type OperatorFunction } from 'rxjs';

/**
 * What one operator did in a run. `seconds` spans its subscription to its last output;
 * `waitUpstreamSeconds` is the part of it spent caught up and starved of input;
 * `waitDownstreamSeconds` the part spent inside synchronous downstream work on its outputs.
 * What is left, `busySeconds`, is the time it had work of its own, and `perSecond` = items/busy.
 */
export interface OperatorStats {
  inputs: number;
  items: number;
  seconds: number;
  waitUpstreamSeconds: number;
  waitDownstreamSeconds: number;
  busySeconds: number;
  perSecond: number;
}

/** Collects {@link OperatorStats} by operator name; several runs of one name add up. */
export class Meter {
  private readonly stats = new Map<string, OperatorStats>();

  record(name: string): OperatorStats {
    let entry = this.stats.get(name);
    if (!entry) {
      entry = { inputs: 0, items: 0, seconds: 0, waitUpstreamSeconds: 0, waitDownstreamSeconds: 0, busySeconds: 0, perSecond: 0 };
      this.stats.set(name, entry);
    }
    return entry;
  }

  snapshot(): Record<string, OperatorStats> {
    return Object.fromEntries([...this.stats].map(([name, s]) => [name, { ...s }]));
  }
}

const now = () => performance.now() / 1000;

/**
 * Wraps `operator` so that `meter` counts its items and times, at a few clock reads per item.
 * `size` says how many items an output stands for (e.g. the images in a batch); default 1.
 */
export function measure<I, O>(meter: Meter, name: string, operator: OperatorFunction<I, O>, size: (output: O) => number = () => 1): OperatorFunction<I, O> {
  return (source) =>
    defer(() => {
      const stats = meter.record(name);
      const start = now();
      let lastInput = -Infinity;
      let lastOutput = start;
      let waitUpstream = 0;
      let waitDownstream = 0;
      let settled = false;
      const settle = () => {
        if (settled) return;
        settled = true;
        const seconds = Math.max(0, lastOutput - start);
        stats.seconds += seconds;
        stats.waitUpstreamSeconds += waitUpstream;
        stats.waitDownstreamSeconds += waitDownstream;
        stats.busySeconds += Math.max(0, seconds - waitUpstream - waitDownstream);
        stats.perSecond = stats.busySeconds > 0 ? stats.items / stats.busySeconds : 0;
      };
      const counted = new Observable<I>((subscriber) =>
        source.subscribe({
          next(value) {
            const t = now();
            if (lastOutput > lastInput) waitUpstream += t - lastOutput;
            lastInput = t;
            stats.inputs++;
            subscriber.next(value);
          },
          error: (error) => subscriber.error(error),
          complete: () => subscriber.complete(),
        }),
      );
      return new Observable<O>((subscriber) => {
        const subscription = operator(counted).subscribe({
          next(value) {
            stats.items += size(value);
            const t = now();
            subscriber.next(value);
            lastOutput = now();
            waitDownstream += lastOutput - t;
          },
          error(error) {
            settle();
            subscriber.error(error);
          },
          complete() {
            settle();
            subscriber.complete();
          },
        });
        return () => {
          settle();
          subscription.unsubscribe();
        };
      });
    });
}

/** {@link measure} for a source: times `source` from subscription to its last emission. */
export function measureSource<T>(meter: Meter, name: string, source: Observable<T>): Observable<T> {
  return measure<never, T>(meter, name, () => source)(EMPTY);
}
