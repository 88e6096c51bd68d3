/**
 * rxcnn's side of the peer bench's decode measurements, in a process of its own as PIL's and the
 * DataLoader's are: the bench process holds the tfjs backend and its threads, whose CPU time would
 * count against the decoder, and a child can be started with another allocator setting. Prints JSON.
 *
 *   node --import tsx bench/peer/rxcnn-decode.ts profile <file list> <size> <fast|sharp>
 *     one image at a time, from bytes in memory: CPU seconds per image to decode (the bare library
 *     call, full size) and for everything decodePixels does
 *   node --import tsx bench/peer/rxcnn-decode.ts throughput <file list> <size> <fast|sharp> <concurrency> <batch>
 *     images per second through the decode operator (<concurrency> decoding threads) and batch, files read
 *     from disk, after a warm-up pass
 */
import { readFile } from 'node:fs/promises';
import { Transformer } from '@napi-rs/image';
import { from, lastValueFrom, toArray } from 'rxjs';
import sharp from 'sharp';
import { batch } from '../../src/operators/batch.js';
import { decode } from '../../src/operators/decode.js';
import { decodePixels } from '../../src/decode/pixels.js';
import { DECODE_CHUNK } from '../../src/decode/pool.js';

/**
 * CPU seconds per call of `stage` over `count` items, one at a time, after a warm-up pass; the event
 * loop turns after every chunk of items, as on a decoding thread (`DECODE_CHUNK`).
 */
async function cpuPerItem(count: number, stage: (i: number) => Promise<unknown>): Promise<number> {
  const pass = async () => {
    for (let i = 0; i < count; i++) {
      await stage(i);
      if ((i + 1) % DECODE_CHUNK === 0) await new Promise(setImmediate);
    }
  };
  await pass();
  const start = process.cpuUsage();
  await pass();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6 / count;
}

const [task, list, sizeText, decoder, concurrency, batchSize] = process.argv.slice(2);
if (!list || !sizeText || (decoder !== 'fast' && decoder !== 'sharp') || (task !== 'profile' && task !== 'throughput')) {
  throw new Error('usage: rxcnn-decode.ts profile|throughput <file list> <size> <fast|sharp> [concurrency batch]');
}
const size = Number(sizeText);
const paths = (await readFile(list, 'utf8')).split('\n').filter(Boolean);
if (task === 'profile') {
  const files = await Promise.all(paths.map((path) => readFile(path)));
  const bare = decoder === 'fast' ? async (i: number) => new Transformer(files[i]!).rawPixelsSync() : (i: number) => sharp(files[i]!).raw().toBuffer();
  const decodeOnly = await cpuPerItem(files.length, bare);
  const decodeResize = await cpuPerItem(files.length, (i) => decodePixels(files[i]!, { size, decoder }));
  console.log(JSON.stringify({ decode: decodeOnly, decodeResize }));
} else {
  const samples = paths.map((path, label) => ({ path, label }));
  const pass = async () => {
    const t0 = performance.now();
    await lastValueFrom(from(samples).pipe(decode({ size, concurrency: Number(concurrency), decoder }), batch(Number(batchSize)), toArray()));
    return samples.length / ((performance.now() - t0) / 1000);
  };
  await pass(); // warm-up: page cache, libuv threads, JIT
  console.log(JSON.stringify({ imagesPerSecond: await pass() }));
}
