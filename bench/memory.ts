import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { concatMap, from, identity, lastValueFrom, tap, toArray } from 'rxjs';
import { HEAP_FLAGS } from '../src/core/allocator.js';
import type { Sample } from '../src/core/types.js';
import { batch } from '../src/operators/batch.js';
import { decode } from '../src/operators/decode.js';
import { prefetch } from '../src/operators/prefetch.js';
import { fixed, formatTable } from './table.js';

/** One pipeline run in a fresh process, so its peak RSS is its own. */
interface MemoryJob {
  samples: Sample[];
  size: number;
  batch: number;
  /** Prefetch bound in images; null runs the same pipeline without prefetch. */
  bound: number | null;
  /** How long the consumer takes per image, in ms. */
  consumerMsPerImage: number;
}

export interface MemoryRow {
  pipeline: 'prefetch' | 'no prefetch';
  bound: number | null;
  images: number;
  /** Most images decoded and not yet consumed at any moment. */
  peakDecodedInFlight: number;
  /** Peak resident memory of the whole process, and its resident memory before the run. */
  peakRssMB: number;
  baselineRssMB: number;
  seconds: number;
}

export interface MemoryReport {
  decodeMsPerImage: number;
  consumerMsPerImage: number;
  rows: MemoryRow[];
  /** Whether the bounded pipeline's peaks stayed flat while the dataset grew. */
  boundedFlat: boolean;
}

export interface MemoryOptions {
  /** The larger dataset; the smaller one is its first tenth. Cycled from `pool` when it has fewer images. */
  images: number;
  pool: readonly Sample[];
  size: number;
  batch: number;
  /** Prefetch bound in batches. */
  prefetchBatches: number;
  /** How many times slower than decoding the consumer is. */
  slowdown: number;
}

const MB = 1024 * 1024;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Peak resident memory of this process: Linux's VmHWM where there is one. getrusage's maxRSS is no
 * use in a child: the kernel carries the parent's peak at fork across exec into it.
 */
function peakRssBytes(): number {
  const status = (() => {
    try {
      return readFileSync('/proc/self/status', 'utf8');
    } catch {
      return '';
    }
  })();
  const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  return hwm ? Number(hwm[1]) * 1024 : process.resourceUsage().maxRSS * 1024;
}

/** The child's side: decode → batch → a consumer slower than decoding, counting decoded images in flight. */
async function runJob(job: MemoryJob): Promise<Omit<MemoryRow, 'pipeline'>> {
  const baselineRss = process.memoryUsage().rss;
  const start = performance.now();
  let inFlight = 0;
  let peakDecodedInFlight = 0;
  const feed = job.bound === null ? null : prefetch(job.bound);
  await lastValueFrom(
    (feed ? feed.source(job.samples) : from(job.samples)).pipe(
      decode({ size: job.size, onSkip: () => feed?.drop() }),
      tap(() => (peakDecodedInFlight = Math.max(peakDecodedInFlight, ++inFlight))),
      batch(job.batch),
      concatMap(async (b) => {
        await sleep(b.y.length * job.consumerMsPerImage);
        inFlight -= b.y.length;
        return b.y.length;
      }),
      feed ? feed.consumed((n: number) => n) : identity,
      toArray(),
    ),
  );
  return {
    bound: job.bound,
    images: job.samples.length,
    peakDecodedInFlight,
    peakRssMB: peakRssBytes() / MB,
    baselineRssMB: baselineRss / MB,
    seconds: (performance.now() - start) / 1000,
  };
}

function inChild(job: MemoryJob): Promise<Omit<MemoryRow, 'pipeline'>> {
  return new Promise((resolve, reject) => {
    // started as rxcnn's commands start (the heap setting; the malloc setting comes with the environment)
    const child = fork(fileURLToPath(import.meta.url), ['--memory-job'], { execArgv: [...HEAP_FLAGS, '--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let answered = false;
    child.on('message', (message: { row?: Omit<MemoryRow, 'pipeline'>; error?: string }) => {
      answered = true;
      if (message.row) resolve(message.row);
      else reject(new Error(`memory bench child: ${message.error}`));
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (!answered) reject(new Error(`memory bench child exited with code ${code} before answering`));
    });
    child.send(job);
  });
}

const cycled = (pool: readonly Sample[], n: number): Sample[] => Array.from({ length: n }, (_, i) => pool[i % pool.length]!);

/**
 * Peak RSS and peak decoded-in-flight images with a consumer `slowdown`× slower than decoding, for
 * two dataset sizes 10× apart, with prefetch (must stay flat) and without (grows, for contrast).
 */
export async function benchMemory(options: MemoryOptions): Promise<MemoryReport> {
  if (options.pool.length === 0) throw new Error('memory bench: no images');
  const probe = cycled(options.pool, Math.min(32, options.images));
  await lastValueFrom(from(probe).pipe(decode({ size: options.size }), toArray()));
  const t0 = performance.now();
  await lastValueFrom(from(probe).pipe(decode({ size: options.size }), toArray()));
  const decodeMsPerImage = (performance.now() - t0) / probe.length;
  const consumerMsPerImage = decodeMsPerImage * options.slowdown;
  const bound = options.prefetchBatches * options.batch;
  const rows: MemoryRow[] = [];
  for (const pipeline of ['prefetch', 'no prefetch'] as const) {
    for (const images of [Math.ceil(options.images / 10), options.images]) {
      const row = await inChild({ samples: cycled(options.pool, images), size: options.size, batch: options.batch, bound: pipeline === 'prefetch' ? bound : null, consumerMsPerImage });
      rows.push({ pipeline, ...row });
    }
  }
  const [small, large] = rows.filter((r) => r.pipeline === 'prefetch');
  return {
    decodeMsPerImage,
    consumerMsPerImage,
    rows,
    boundedFlat: large!.peakDecodedInFlight <= bound && large!.peakDecodedInFlight <= Math.max(small!.peakDecodedInFlight, bound),
  };
}

export function formatMemoryTable(report: MemoryReport): string {
  return [
    `decode ${fixed(report.decodeMsPerImage, 2)} ms/image, consumer ${fixed(report.consumerMsPerImage, 1)} ms/image (each run in a fresh process)`,
    formatTable(
      ['pipeline', 'images', 'peak decoded in flight', 'peak RSS MB', 'RSS before MB', 'seconds'],
      report.rows.map((r) => [r.bound === null ? r.pipeline : `${r.pipeline} (bound ${r.bound})`, String(r.images), String(r.peakDecodedInFlight), fixed(r.peakRssMB), fixed(r.baselineRssMB), fixed(r.seconds)]),
    ),
    `with prefetch the peak ${report.boundedFlat ? 'stays within the bound as the dataset grows 10×' : 'GREW with the dataset'}`,
  ].join('\n');
}

if (process.argv.includes('--memory-job') && process.send) {
  process.once('message', (job: MemoryJob) => {
    runJob(job).then(
      (row) => process.send!({ row }, () => process.exit(0)),
      (error: unknown) => process.send!({ error: error instanceof Error ? error.message : String(error) }, () => process.exit(1)),
    );
  });
}
