import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import cliProgress from 'cli-progress';
import { exists, type KnownWeights } from './weights.js';

export interface DownloadOptions {
  /** Folder the file is cached in. */
  dir: string;
  /** Show a progress bar on stderr (only when it is a terminal). */
  progress?: boolean;
}

/**
 * Downloads `known.url` into `dir/known.file` unless it is already there, checking the published
 * SHA-256 or MD5 sum. The file appears only complete and verified (temporary file + rename).
 */
export async function downloadWeights(known: KnownWeights, options: DownloadOptions): Promise<string> {
  const target = join(options.dir, known.file);
  if (await exists(target)) return target;
  await mkdir(options.dir, { recursive: true });
  const temporary = `${target}.${process.pid}.part`;
  const where = `put ${known.file} into ${options.dir}/ or pass --weights <file>`;
  let response: Response;
  try {
    response = await fetch(known.url);
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`cannot download ${known.url} (${cause?.code ?? cause?.message ?? String(error)}); ${where}`);
  }
  if (!response.ok || !response.body) throw new Error(`cannot download ${known.url} (HTTP ${response.status}); ${where}`);
  const total = Number(response.headers.get('content-length')) || 0;
  const sha256 = createHash('sha256');
  const md5 = createHash('md5');
  const bar = options.progress && process.stderr.isTTY ? new cliProgress.SingleBar({ stream: process.stderr, format: `${known.file} [{bar}] {percentage}% | {value}/{total} bytes`, clearOnComplete: true }, cliProgress.Presets.shades_classic) : null;
  bar?.start(total, 0);
  let received = 0;
  const hashing = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      sha256.update(chunk);
      md5.update(chunk);
      received += chunk.length;
      bar?.update(received);
      callback(null, chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), hashing, createWriteStream(temporary));
    bar?.stop();
    const got = { sha256: sha256.digest('hex'), md5: md5.digest('hex') };
    if (known.sha256 && got.sha256 !== known.sha256) throw new Error(`${known.url}: SHA-256 is ${got.sha256}, expected ${known.sha256}; the download was discarded`);
    if (known.md5 && got.md5 !== known.md5) throw new Error(`${known.url}: MD5 is ${got.md5}, expected ${known.md5}; the download was discarded`);
    await rename(temporary, target);
    return target;
  } catch (error) {
    bar?.stop();
    await rm(temporary, { force: true });
    throw error;
  }
}
