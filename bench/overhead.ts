import { readFileSync } from 'node:fs';
import { FastResizeFilter, ResizeFit, Transformer } from '@napi-rs/image';
import pLimit from 'p-limit';
import sharp from 'sharp';
import { from, lastValueFrom, toArray } from 'rxjs';
import { Bench } from 'tinybench';
import { completed } from './completed.js';
import type { Sample } from '../src/core/types.js';
import { decode, DEFAULT_LIMIT_INPUT_PIXELS } from '../src/operators/decode.js';
import { rgbFromRgba } from '../src/decode/fast.js';
import { addMeasuredCase, type CaseUsage } from './cpu.js';
import { fixed, formatTable, times } from './table.js';

export interface OverheadRow {
  decoder: 'fast' | 'sharp';
  concurrency: number;
  operatorPerSecond: number;
  barePerSecond: number;
  /** operator / bare, the median over the rounds; the target is ≥ 0.95. */
  ratio: number;
  /** Each round's ratio, to show the spread. */
  rounds: number[];
  /** Bare CPU seconds per image ÷ the operator's (all threads): the same ratio by work done, which load from other processes sways far less than wall time. */
  cpuRatio: number;
}

export interface OverheadOptions {
  samples: readonly Sample[];
  size: number;
  concurrencies: readonly number[];
  /** Alternating rounds of (operator, bare); the ratio is their median, which load from elsewhere sways least. */
  rounds: number;
  /** tinybench time budget per case and round, in ms. */
  time: number;
}

/**
 * The library calls `decode`'s fast path makes (squash mode, upright photos) and the conversion of
 * the library's RGBA to the RGB every decoder returns, in a bare p-limit loop; files read as
 * `decode` reads them (synchronously).
 */
function bareFast(samples: readonly Sample[], size: number, concurrency: number): Promise<unknown[]> {
  const limit = pLimit(concurrency);
  return Promise.all(
    samples.map((sample) =>
      limit(async () =>
        rgbFromRgba(await new Transformer(readFileSync(sample.path)).fastResize({ width: size, height: size, filter: FastResizeFilter.Bilinear, fit: ResizeFit.Fill }).rawPixels(), { width: size, height: size, size }),
      ),
    ),
  );
}

/** The same sharp pipeline `decode` runs (squash mode), in a bare p-limit loop. */
function bareSharp(samples: readonly Sample[], size: number, concurrency: number): Promise<unknown[]> {
  const limit = pLimit(concurrency);
  return Promise.all(
    samples.map((sample) =>
      limit(() =>
        sharp(sample.path, { limitInputPixels: DEFAULT_LIMIT_INPUT_PIXELS, failOn: 'error' })
          .rotate()
          .resize(size, size, { fit: 'fill' })
          .toColourspace('srgb')
          .removeAlpha()
          .raw({ depth: 'uchar' })
          .toBuffer({ resolveWithObject: true }),
      ),
    ),
  );
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/**
 * What the decode operator (header read and routing, RxJS, ordering, skip handling) costs over the
 * decoding library alone, same settings and concurrency: the fast decoder against a bare
 * @napi-rs/image loop, sharp against a bare sharp loop.
 */
export async function benchOverhead(options: OverheadOptions): Promise<OverheadRow[]> {
  return [...(await benchOverheadOf('fast', bareFast, options)), ...(await benchOverheadOf('sharp', bareSharp, options))];
}

async function benchOverheadOf(decoder: OverheadRow['decoder'], bare: typeof bareSharp, options: OverheadOptions): Promise<OverheadRow[]> {
  const { samples, size } = options;
  const perRound = new Map<number, Array<{ operator: number; bare: number }>>(options.concurrencies.map((c) => [c, []]));
  const usage = new Map<string, CaseUsage[]>(); // one per round
  const cpuPerCall = (name: string) => {
    const rounds = usage.get(name)!;
    return rounds.reduce((s, u) => s + u.cpuSeconds, 0) / rounds.reduce((s, u) => s + u.calls, 0);
  };
  for (let round = 0; round < options.rounds; round++) {
    const bench = new Bench({ time: options.time, iterations: 2, warmupIterations: 1, warmupTime: 0 });
    for (const c of options.concurrencies) {
      // Alternate which side runs first, so neither always gets the warmer caches.
      const pair: Array<[string, () => Promise<unknown>]> = [
        [`operator c=${c}`, () => lastValueFrom(from(samples).pipe(decode({ size, concurrency: c, decoder }), toArray()))],
        [`bare c=${c}`, () => bare(samples, size, c)],
      ];
      for (const [name, fn] of round % 2 ? pair.reverse() : pair) usage.set(name, [...(usage.get(name) ?? []), addMeasuredCase(bench, name, fn)]);
    }
    await bench.run();
    for (const c of options.concurrencies) {
      const rate = (name: string) => {
        const result = completed(bench.getTask(name)!);
        return (samples.length * 1000) / result.period;
      };
      perRound.get(c)!.push({ operator: rate(`operator c=${c}`), bare: rate(`bare c=${c}`) });
    }
  }
  return options.concurrencies.map((concurrency) => {
    const rounds = perRound.get(concurrency)!;
    return {
      decoder,
      concurrency,
      operatorPerSecond: median(rounds.map((r) => r.operator)),
      barePerSecond: median(rounds.map((r) => r.bare)),
      ratio: median(rounds.map((r) => r.operator / r.bare)),
      rounds: rounds.map((r) => r.operator / r.bare),
      cpuRatio: cpuPerCall(`bare c=${concurrency}`) / cpuPerCall(`operator c=${concurrency}`),
    };
  });
}

export function formatOverheadTable(rows: readonly OverheadRow[]): string {
  return formatTable(
    ['decoder', 'concurrency', 'decode operator img/s', 'bare library loop img/s', 'ratio (median)', 'rounds', 'target ≥ 0.95×', 'ratio by CPU time'],
    rows.map((r) => [r.decoder === 'fast' ? 'fast (bare: @napi-rs/image)' : 'sharp (bare: sharp)', String(r.concurrency), fixed(r.operatorPerSecond), fixed(r.barePerSecond), times(r.ratio), r.rounds.map((x) => x.toFixed(3)).join(' '), r.ratio >= 0.95 ? 'met' : 'MISSED', times(r.cpuRatio)]),
  );
}
