import { readdirSync, readFileSync } from 'node:fs';

/** FP32 peak of the reference machine: 2 cores × 2 FMA units × 8 lanes × 2 FLOP × ~2.6 GHz. */
export const MACHINE_PEAK_GFLOPS = 166;

/** CPU seconds (user + system) of this process so far, all threads together. */
export function processCpuSeconds(): number {
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
export function threadSnapshot(): ThreadSnapshot | null {
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
export function threadCpuSince(start: ThreadSnapshot | null): ThreadCpu | null {
  const end = threadSnapshot();
  if (!start || !end) return null;
  const used: ThreadCpu = { main: 0, libvips: 0, other: 0 };
  for (const [tid, { pool, seconds }] of end.threads) used[pool] += seconds - (start.threads.get(tid)?.seconds ?? 0);
  used.other += Math.max(0, end.total - start.total - used.main - used.libvips - used.other);
  return used;
}
