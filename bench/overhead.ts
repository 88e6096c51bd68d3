import type { Worker } from 'node:worker_threads';
import { count, from, lastValueFrom } from 'rxjs';
import { Bench } from 'tinybench';
import { completed } from './completed.js';
import type { Sample } from '../src/core/types.js';
import { decode } from '../src/operators/decode.js';
import { startWorker } from '../src/core/worker.js';
import type { BareJob, BareReply } from './overhead-worker.js';
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
  /** The bare loop that also posts each chunk's pixels to the main thread, copied, as the decoding threads do. */
  handBackPerSecond: number;
  /** operator / that loop, the median over the rounds: what the operator costs beyond getting the pixels to the thread that uses them. */
  handBackRatio: number;
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
 * The bare library loop at `threads` threads: each thread runs the library calls `decode` makes
 * (`overhead-worker.ts`) over its contiguous share of the files, with no ordering, chunking or
 * result objects — what the decode operator's threads would do if the operator cost nothing. With
 * `handBack`, each thread also posts its pixels to this thread, chunk by chunk, and nothing more.
 */
function bareThreads(threads: number) {
  const workers = Array.from({ length: threads }, () => startWorker(new URL('./overhead-worker.ts', import.meta.url), null));
  const run = (worker: Worker, job: BareJob) =>
    new Promise<void>((resolve, reject) => {
      // Handed-back pixels are received and let go, as `batch` lets each image go once copied.
      const listener = (reply: BareReply) => {
        if ('pixels' in reply) return;
        worker.off('message', listener);
        if ('error' in reply) reject(new Error(reply.error));
        else resolve();
      };
      worker.on('message', listener);
      worker.postMessage(job);
    });
  return {
    run: (samples: readonly Sample[], size: number, decoder: BareJob['decoder'], handBack = false) => {
      const share = Math.ceil(samples.length / threads);
      return Promise.all(workers.map((worker, i) => run(worker, { paths: samples.slice(i * share, (i + 1) * share).map((s) => s.path), size, decoder, handBack })));
    },
    close: () => Promise.all(workers.map((worker) => worker.terminate())),
  };
}

/** Unmeasured passes per side and thread count before the rounds. */
const WARM_UP_PASSES = 2;

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/**
 * What the decode operator (header read and routing, chunks to its decoding threads, RxJS, ordering,
 * skip handling) costs over the decoding library alone on as many threads: the fast decoder against
 * bare @napi-rs/image loops, sharp against bare sharp loops.
 */
export async function benchOverhead(options: OverheadOptions): Promise<OverheadRow[]> {
  return [...(await benchOverheadOf('fast', options)), ...(await benchOverheadOf('sharp', options))];
}

async function benchOverheadOf(decoder: OverheadRow['decoder'], options: OverheadOptions): Promise<OverheadRow[]> {
  const { samples, size } = options;
  const perRound = new Map<number, Array<{ operator: number; bare: number; handBack: number }>>(options.concurrencies.map((c) => [c, []]));
  const usage = new Map<string, CaseUsage[]>(); // one per round
  const cpuPerCall = (name: string) => {
    const rounds = usage.get(name)!;
    return rounds.reduce((s, u) => s + u.cpuSeconds, 0) / rounds.reduce((s, u) => s + u.calls, 0);
  };
  const bare = new Map(options.concurrencies.map((c) => [c, bareThreads(c)]));
  const operatorPass = (c: number) => lastValueFrom(from(samples).pipe(decode({ size, concurrency: c, decoder }), count()));
  // Both sides' threads started, their modules loaded and compiled, their heaps grown, before anything
  // is measured: the first passes on new threads run at about half speed, and tinybench leaves its
  // warm-up call out of the timings but not out of the CPU counted.
  for (const c of options.concurrencies) {
    for (let pass = 0; pass < WARM_UP_PASSES; pass++) {
      await operatorPass(c);
      await bare.get(c)!.run(samples, size, decoder);
      await bare.get(c)!.run(samples, size, decoder, true);
    }
  }
  for (let round = 0; round < options.rounds; round++) {
    const bench = new Bench({ time: options.time, iterations: 2, warmupIterations: 1, warmupTime: 0 });
    for (const c of options.concurrencies) {
      // Rotate which side runs first, so none always gets the warmer caches.
      const sides: Array<[string, () => Promise<unknown>]> = [
        // Each image let go as it comes, as `batch` does and as the bare loop does: kept, they would hold memory the decoders could reuse.
        [`operator c=${c}`, () => operatorPass(c)],
        [`bare c=${c}`, () => bare.get(c)!.run(samples, size, decoder)],
        [`hand-back c=${c}`, () => bare.get(c)!.run(samples, size, decoder, true)],
      ];
      const order = [...sides.slice(round % sides.length), ...sides.slice(0, round % sides.length)];
      for (const [name, fn] of order) usage.set(name, [...(usage.get(name) ?? []), addMeasuredCase(bench, name, fn)]);
    }
    await bench.run();
    for (const c of options.concurrencies) {
      const rate = (name: string) => {
        const result = completed(bench.getTask(name)!);
        return (samples.length * 1000) / result.period;
      };
      perRound.get(c)!.push({ operator: rate(`operator c=${c}`), bare: rate(`bare c=${c}`), handBack: rate(`hand-back c=${c}`) });
    }
  }
  await Promise.all([...bare.values()].map((threads) => threads.close()));
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
      handBackPerSecond: median(rounds.map((r) => r.handBack)),
      handBackRatio: median(rounds.map((r) => r.operator / r.handBack)),
    };
  });
}

export function formatOverheadTable(rows: readonly OverheadRow[]): string {
  return formatTable(
    ['decoder', 'concurrency', 'decode operator img/s', 'bare library loop img/s', 'ratio (median)', 'rounds', 'target ≥ 0.95×', 'ratio by CPU time', 'bare loop handing pixels back img/s', 'operator ÷ that'],
    rows.map((r) => [r.decoder === 'fast' ? 'fast (bare: @napi-rs/image on as many threads)' : 'sharp (bare: sharp on as many threads)', String(r.concurrency), fixed(r.operatorPerSecond), fixed(r.barePerSecond), times(r.ratio), r.rounds.map((x) => x.toFixed(3)).join(' '), r.ratio >= 0.95 ? 'met' : 'MISSED', times(r.cpuRatio), fixed(r.handBackPerSecond), times(r.handBackRatio)]),
  );
}
