import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../core/worker.js';
import type { PixelOptions } from './pixels.js';

/** A file to decode and its place in the stream. */
export interface DecodeRequest {
  index: number;
  path: string;
}

export type DecodeOutcome = { index: number; pixels: Uint8Array } | { index: number; reason: string };

export interface ChunkRequest {
  id: number;
  files: DecodeRequest[];
  options: PixelOptions;
}

export type ChunkReply = { id: number; outcomes: DecodeOutcome[] } | { id: number; error: string };

interface Thread {
  worker: Worker;
  pending: Map<number, { resolve: (outcomes: DecodeOutcome[]) => void; reject: (error: Error) => void }>;
}

/**
 * Files per message to a decoding thread and back. A thread wakes the event loop once per chunk, and
 * between chunks its own event loop turns, which is when Node-API finalizers free the decoding
 * library's buffers: decoded back to back with no turn between them, photos took 1.8 ms of CPU
 * each instead of 0.64 ms, ~100 page faults apiece for memory never reused. Small enough that a
 * chunk is decoded in ~5 ms and a half-empty prefetch window still fills every thread.
 */
export const DECODE_CHUNK = 8;

/** One decoding thread per core: each decodes one image at a time, as a DataLoader worker process does. */
export const DEFAULT_DECODE_THREADS = availableParallelism();

/**
 * The process's decoding threads, started on first use and shared by every pool: a pool of n
 * threads uses the first n, so asking for 1, 2 and 4 threads starts 4, not 7. Chunk ids are the
 * process's too, since pools of different sizes queue chunks on the same threads.
 */
const threads: Array<Thread | null> = [];
let nextId = 0;

/** How many decoding threads the process is running. */
export function runningDecodingThreads(): number {
  return threads.filter((thread) => thread !== null).length;
}

/**
 * Decoding threads: worker threads that decode chunks of files synchronously (`src/decode/worker.ts`),
 * as PyTorch's DataLoader workers do in processes. A chunk goes to the thread with the least work
 * queued and comes back in one message, so the threads wake the event loop once per chunk rather
 * than twice per image; threads are started on first use and, while idle, do not keep the process
 * alive.
 */
export class DecodePool {
  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`decoding threads must be a positive integer, got ${size}`);
  }

  /** Decodes `files` on one thread; one outcome per file, in order. */
  run(files: DecodeRequest[], options: PixelOptions): Promise<DecodeOutcome[]> {
    const slot = this.leastBusy();
    const thread = (threads[slot] ??= startThread(slot));
    const id = nextId++;
    return new Promise((resolve, reject) => {
      thread.pending.set(id, { resolve, reject });
      thread.worker.ref();
      thread.worker.postMessage({ id, files, options } satisfies ChunkRequest);
    });
  }

  private leastBusy(): number {
    const queued = (slot: number) => threads[slot]?.pending.size ?? 0;
    let best = 0;
    for (let slot = 1; slot < this.size; slot++) if (queued(slot) < queued(best)) best = slot;
    return best;
  }
}

function startThread(slot: number): Thread {
  const worker = startWorker(new URL(`./worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url), null);
  const thread: Thread = { worker, pending: new Map() };
  worker.unref();
  worker.on('message', (reply: ChunkReply) => {
    const waiting = thread.pending.get(reply.id);
    thread.pending.delete(reply.id);
    if (thread.pending.size === 0) worker.unref();
    if ('error' in reply) waiting?.reject(new Error(`a decoding thread failed: ${reply.error}`));
    else waiting?.resolve(reply.outcomes);
  });
  // A thread that dies fails what it was given; the next chunk starts a new one in its place.
  const fail = (error: Error) => {
    if (threads[slot] === thread) threads[slot] = null;
    for (const { reject } of thread.pending.values()) reject(error);
    thread.pending.clear();
  };
  worker.on('error', (error) => fail(new Error(`a decoding thread failed: ${error.message}`)));
  worker.on('exit', (code) => fail(new Error(`a decoding thread exited (code ${code})`)));
  return thread;
}

/** `size` of the process's decoding threads (the threads are shared; a pool is only how many of them to use). */
export function decodePool(size: number = DEFAULT_DECODE_THREADS): DecodePool {
  return new DecodePool(size);
}
