import { readdirSync, readFileSync } from 'node:fs';
import type { Bench } from 'tinybench';

/**
 * FP32 peak of the reference machine (AMD EPYC, family 26 = Zen 5, two full-width 512-bit FMA pipes
 * per core): 2 cores × 2.1 GHz (its nominal clock) × 64 FLOP/cycle. A lower bound: boost clocks
 * are not visible in the VM. (rxcnn used to say 166, counting 32 FLOP/cycle at 2.6 GHz, until ONNX
 * Runtime measured more than that.)
 */
export const MACHINE_PEAK_GFLOPS = 269;
export const MACHINE_PEAK_TEXT = `${MACHINE_PEAK_GFLOPS} GFLOP/s FP32 peak of 2 cores × 2.1 GHz × 64 FLOP/cycle (Zen 5, 512-bit FMA)`;

/** CPU seconds (user + system) of this process so far, all threads together. */
function processCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

/**
 * CPU seconds by thread pool: `main` (JavaScript, and the WebAssembly backend's compute, which
 * runs on it), `libvips` (sharp's decode/resize workers), `other` (libuv's pool, where sharp's
 * calls start, V8's platform and GC threads, and threads that ended meanwhile).
 */
export type ThreadCpu = Record<'main' | 'libvips' | 'other', number>;
type Pool = keyof ThreadCpu;

/** Per-thread CPU seconds at one moment, and the process total (which keeps ended threads' time). */
export interface ThreadSnapshot {
  total: number;
  threads: Map<string, { pool: Pool; seconds: number }>;
}

const TICKS_PER_SECOND = 100;

/** utime + stime of a /proc stat file, in seconds (the 12th and 13th fields after the name). */
function statSeconds(file: string): number {
  const stat = readFileSync(file, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** Reads /proc/self; null where there is none (not Linux). */
function threadSnapshot(): ThreadSnapshot | null {
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return null;
  }
  const threads: ThreadSnapshot['threads'] = new Map();
  for (const tid of tids) {
    try {
      const seconds = statSeconds(`/proc/self/task/${tid}/stat`);
      const pool: Pool = Number(tid) === process.pid ? 'main' : readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').startsWith('libvips') ? 'libvips' : 'other';
      threads.set(tid, { pool, seconds });
    } catch {
      // Ended between the listing and the read: the process total still has its time.
    }
  }
  return { total: statSeconds('/proc/self/stat'), threads };
}

/** CPU each pool used since `start`; time of threads that ended in between counts as `other`. */
function threadCpuSince(start: ThreadSnapshot | null): ThreadCpu | null {
  const end = threadSnapshot();
  if (!start || !end) return null;
  const used: ThreadCpu = { main: 0, libvips: 0, other: 0 };
  for (const [tid, { pool, seconds }] of end.threads) used[pool] += seconds - (start.threads.get(tid)?.seconds ?? 0);
  used.other += Math.max(0, end.total - start.total - used.main - used.libvips - used.other);
  return used;
}

/** What a tinybench case spent over all its calls (warm-ups included): wall and CPU seconds. */
export interface CaseUsage {
  calls: number;
  wallSeconds: number;
  /** All threads of the process together. */
  cpuSeconds: number;
  /** By thread pool, when asked for (and on Linux); null otherwise. */
  threads: ThreadCpu | null;
}

/**
 * Adds `fn` to `bench` as a case that also adds up its wall and CPU time. `threads` also splits the
 * CPU by thread pool, reading /proc around every call: for cases long enough not to feel that.
 */
export function addMeasuredCase(bench: Bench, name: string, fn: () => unknown, options: { threads?: boolean } = {}): CaseUsage {
  const usage: CaseUsage = { calls: 0, wallSeconds: 0, cpuSeconds: 0, threads: options.threads && threadSnapshot() ? { main: 0, libvips: 0, other: 0 } : null };
  bench.add(name, async () => {
    const threads = usage.threads ? threadSnapshot() : null;
    const [cpu, wall] = [processCpuSeconds(), performance.now()];
    await fn();
    usage.wallSeconds += (performance.now() - wall) / 1000;
    usage.cpuSeconds += processCpuSeconds() - cpu;
    usage.calls++;
    const used = threads ? threadCpuSince(threads) : null;
    if (used && usage.threads) for (const pool of ['main', 'libvips', 'other'] as const) usage.threads[pool] += used[pool];
  });
  return usage;
}

/** Cores a case kept busy on average: CPU seconds per wall second (0 before any call). */
export const busyCores = (usage: CaseUsage): number => (usage.wallSeconds > 0 ? usage.cpuSeconds / usage.wallSeconds : 0);
