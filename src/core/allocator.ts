/**
 * glibc's malloc setting rxcnn's commands run with (`src/cli/launch.ts` puts it in the environment
 * of the process it starts; glibc reads it once, at start-up). The fast decoder allocates several
 * image-sized buffers per photo (file, decoded, RGBA, resized: 0.1–1.2 MB each) and `batch` one per
 * batch (4.8 MB for 32 images at 224 px); by default glibc maps blocks above 128 KiB fresh from the
 * kernel and unmaps them when freed (raising that bar only as larger blocks come and go) and trims
 * its heaps back when 2× that is free, so photo after photo pays page faults and zeroing again —
 * measured on 2 cores, as much CPU as the decode itself. Blocks up to 16 MiB from the heap and up to
 * 64 MiB kept free per arena stop that, at a bounded cost in resident memory (with 4 MiB, each batch
 * still came fresh from the kernel: 37 page faults per image, a third fewer images per second). Ignored elsewhere than Linux with glibc; a `GLIBC_TUNABLES` that already sets
 * any `glibc.malloc` tunable is left as it is.
 */
export const MALLOC_TUNABLES = 'glibc.malloc.mmap_threshold=16777216:glibc.malloc.trim_threshold=67108864';

/** `env` with {@link MALLOC_TUNABLES} added to its `GLIBC_TUNABLES`, unless that already sets malloc's. */
export function withMallocTunables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const current = env.GLIBC_TUNABLES;
  if (current?.includes('glibc.malloc.')) return env;
  return { ...env, GLIBC_TUNABLES: current ? `${current}:${MALLOC_TUNABLES}` : MALLOC_TUNABLES };
}

/**
 * The V8 heap setting rxcnn's commands start with (`src/cli/launch.ts` puts it in the `node` command
 * line of the process it starts; V8 reads it once, at start-up). Decoded images reach the main thread
 * as buffers outside V8's heap (150 KB each at 224 px) that V8 still counts towards its next full
 * collection, and with the old generation sized from a pipeline's small live heap (~10 MB) that came
 * every ~15 MB of pixels: a mark-compact every ~100 images, 0.2 ms of main-thread CPU per image (the
 * decode operator on 2 decoding threads: 1,599 img/s, 2,101 with this setting; README, Performance).
 * Starting the old generation at 128 MB spaces them out; what it lets build up in between is pixels
 * already used, freed at the next one. V8 flags hold for every isolate, so worker threads start so too
 * (the memory bench, whose child processes start with it, peaks at 224 / 310 MB resident for 64 / 640
 * photos with prefetch; README, Performance).
 */
export const HEAP_FLAGS: readonly string[] = ['--initial-old-space-size=128'];

/** `execArgv` with {@link HEAP_FLAGS} added, unless it already sizes the old generation itself. */
export function withHeapFlags(execArgv: readonly string[]): readonly string[] {
  if (execArgv.some((arg) => /^--initial[-_]old[-_]space[-_]size(=|$)/.test(arg))) return execArgv;
  return [...execArgv, ...HEAP_FLAGS];
}

/** `env` without any glibc tunable: the allocator as it comes, as in a user's own `node` process. */
export function withoutTunables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { GLIBC_TUNABLES: _dropped, ...rest } = env;
  return rest;
}
