import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import cliProgress from 'cli-progress';
import { exists, type KnownWeights } from './weights.js';

/** A published file and how to check it (weights, dataset archives). */
export interface DownloadSource {
  file: string;
  url: string;
  sha256?: string;
  md5?: string;
}

export interface DownloadOptions {
  /** Folder the file is cached in. */
  dir: string;
  /** Show a progress bar on stderr (only when it is a terminal). */
  progress?: boolean;
  /** What the user can do instead when the file cannot be downloaded (ends the one-line error). */
  instead?: string;
  /** Connections that may drop mid-transfer before giving up; each retry resumes where the last stopped (3). */
  retries?: number;
  /** Informational lines (resuming, retrying). */
  say?: (line: string) => void;
}

/** "1.2 GB", "137.4 MB", "512 B". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** The file's digest in the algorithm `source` publishes, and the published value; null when it publishes none. */
export async function checkFile(path: string, source: Pick<DownloadSource, 'sha256' | 'md5'>): Promise<{ algorithm: 'SHA-256' | 'MD5'; got: string; expected: string } | null> {
  const [algorithm, expected] = source.sha256 ? (['SHA-256', source.sha256] as const) : source.md5 ? (['MD5', source.md5] as const) : [null, null];
  if (!algorithm) return null;
  const hash = createHash(algorithm === 'SHA-256' ? 'sha256' : 'md5');
  await pipeline(createReadStream(path), hash);
  return { algorithm, got: hash.digest('hex'), expected };
}

/** Whether a process with this id exists (one owned by another user counts). */
export const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Two processes appending to one partial file would interleave their bytes; a lock file holding the
 * downloader's pid keeps a second one out. A lock whose process is gone (killed mid-download) is
 * taken over, so the partial file it left is resumed.
 */
async function lock(path: string, file: string, dir: string): Promise<() => Promise<void>> {
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(path, String(process.pid), { flag: 'wx' });
      return () => rm(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw error;
      const holder = Number(await readFile(path, 'utf8').catch(() => ''));
      if (holder > 0 && alive(holder)) throw new Error(`another process (pid ${holder}) is downloading ${file} into ${dir}/; wait for it to finish`);
      await rm(path, { force: true });
    }
  }
}

function progressBar(file: string, show: boolean | undefined) {
  if (!show || !process.stderr.isTTY) return null;
  return new cliProgress.SingleBar(
    { stream: process.stderr, format: `${file} [{bar}] {percentage}% | {got} of {size} | {rate}/s | ETA {eta_formatted}`, clearOnComplete: true, etaBuffer: 50 },
    cliProgress.Presets.shades_classic,
  );
}

/**
 * Downloads `source.url` to `dir/source.file` unless that file is already there. The bytes go to
 * `file.part` and appear under the final name only complete and checked against the published
 * SHA-256 or MD5 (a mismatch deletes them). With a published hash the partial file survives an
 * interruption and the next attempt asks only for the rest (`Range: bytes=N-`); without one it starts
 * over, since nothing could tell a spliced file from the real one. `downloaded` is false when the
 * file was already there (unchecked: the caller decides whether to verify it).
 */
export async function downloadFile(source: DownloadSource, options: DownloadOptions): Promise<{ path: string; downloaded: boolean }> {
  const { file, url } = source;
  const target = join(options.dir, file);
  if (await exists(target)) return { path: target, downloaded: false };
  await mkdir(options.dir, { recursive: true });
  const partial = `${target}.part`;
  const unlock = await lock(`${target}.lock`, file, options.dir);
  const instead = options.instead ?? `put ${file} into ${options.dir}/`;
  const resumable = Boolean(source.sha256 || source.md5);
  const bar = progressBar(file, options.progress);
  try {
    let retries = options.retries ?? 3;
    for (;;) {
      const offset = resumable ? ((await stat(partial).catch(() => null))?.size ?? 0) : 0;
      let response: Response;
      try {
        response = await fetch(url, offset > 0 ? { headers: { range: `bytes=${offset}-` } } : {});
      } catch (error) {
        const cause = (error as { cause?: { code?: string; message?: string } }).cause;
        throw new Error(`cannot download ${url} (${cause?.code ?? cause?.message ?? String(error)}); ${instead}`);
      }
      // 416: nothing after `offset`, so the partial file is already whole; the hash check decides
      if (response.status === 416 && offset > 0) {
        await response.body?.cancel();
        break;
      }
      if (!response.ok || !response.body) throw new Error(`cannot download ${url} (HTTP ${response.status}); ${instead}`);
      // a 206 continues the partial file only if it starts where the file ends; a 200 is the whole file (the server ignored Range)
      const resumed = response.status === 206 && new RegExp(`^bytes ${offset}-`).test(response.headers.get('content-range') ?? '');
      if (response.status === 206 && !resumed) {
        await response.body.cancel();
        await rm(partial, { force: true });
        continue;
      }
      const start = resumed ? offset : 0;
      if (resumed) options.say?.(`resuming ${file} after ${formatBytes(start)}`);
      const total = start + (Number(response.headers.get('content-length')) || 0);
      let received = start;
      const began = Date.now();
      bar?.start(total, start, { got: formatBytes(start), size: formatBytes(total), rate: '-' });
      const counting = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          received += chunk.length;
          bar?.update(received, { got: formatBytes(received), rate: formatBytes(((received - start) * 1000) / Math.max(1, Date.now() - began)) });
          callback(null, chunk);
        },
      });
      try {
        await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), counting, createWriteStream(partial, { flags: resumed ? 'a' : 'w' }));
        bar?.stop();
        break;
      } catch (error) {
        bar?.stop();
        const cause = (error as { cause?: { code?: string; message?: string } }).cause;
        const why = cause?.code ?? cause?.message ?? (error as Error).message;
        if (!resumable) await rm(partial, { force: true });
        if (resumable && retries-- > 0) {
          options.say?.(`${file}: the connection dropped after ${formatBytes(received)} (${why}); resuming`);
          continue;
        }
        const keep = resumable ? `${formatBytes(received)} kept in ${partial}: run again to resume, or ` : '';
        throw new Error(`download of ${url} interrupted after ${formatBytes(received)} of ${formatBytes(total)} (${why}); ${keep}${instead}`);
      }
    }
    const check = await checkFile(partial, source);
    if (check && check.got !== check.expected) {
      await rm(partial, { force: true });
      throw new Error(`${url}: ${check.algorithm} is ${check.got}, expected ${check.expected}; the download was discarded`);
    }
    await rename(partial, target);
    return { path: target, downloaded: true };
  } finally {
    bar?.stop();
    await unlock();
  }
}

/**
 * Downloads `known.url` into `dir/known.file` unless it is already there, checking the published
 * SHA-256 or MD5 sum. The file appears only complete and verified (temporary file + rename).
 */
export async function downloadWeights(known: KnownWeights, options: DownloadOptions): Promise<string> {
  return (await downloadFile(known, { instead: `put ${known.file} into ${options.dir}/ or pass --weights <file>`, ...options })).path;
}
