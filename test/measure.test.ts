import { from, interval, lastValueFrom, map, tap, take, timer, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { Meter, measure, measureSource } from '../src/operators/measure.js';

const spin = (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};

describe('measure', () => {
  it('counts inputs and items, and tells its own work from waiting on a slow upstream', async () => {
    const meter = new Meter();
    const out = await lastValueFrom(
      interval(30).pipe(
        take(6),
        measure(meter, 'work', map((x: number) => (spin(5), x * 2))),
        toArray(),
      ),
    );
    expect(out).toEqual([0, 2, 4, 6, 8, 10]);
    const s = meter.snapshot()['work']!;
    expect(s.inputs).toBe(6);
    expect(s.items).toBe(6);
    expect(s.waitUpstreamSeconds).toBeGreaterThan(0.6 * s.seconds);
    expect(s.busySeconds).toBeGreaterThanOrEqual(0.025);
    expect(s.busySeconds).toBeLessThan(0.4 * s.seconds);
    expect(s.perSecond).toBeCloseTo(6 / s.busySeconds, 6);
  });

  it('charges synchronous downstream work to waiting on downstream, not to the operator', async () => {
    const meter = new Meter();
    await lastValueFrom(from([1, 2, 3, 4, 5]).pipe(measure(meter, 'pass', map((x: number) => x)), tap(() => spin(10)), toArray()));
    const s = meter.snapshot()['pass']!;
    expect(s.waitDownstreamSeconds).toBeGreaterThanOrEqual(0.05);
    expect(s.busySeconds).toBeLessThan(0.5 * s.waitDownstreamSeconds);
  });

  it('counts what an output stands for, and adds up runs of one name', async () => {
    const meter = new Meter();
    const op = () => measure(meter, 'batches', map((n: number) => Array.from({ length: n })), (b) => b.length);
    await lastValueFrom(from([3, 4]).pipe(op(), toArray()));
    await lastValueFrom(from([5]).pipe(op(), toArray()));
    expect(meter.snapshot()['batches']).toMatchObject({ inputs: 3, items: 12 });
  });

  it('times a source from subscription to its last value', async () => {
    const meter = new Meter();
    await lastValueFrom(measureSource(meter, 'source', timer(40)));
    const s = meter.snapshot()['source']!;
    expect(s.items).toBe(1);
    expect(s.seconds).toBeGreaterThanOrEqual(0.035);
  });
});
