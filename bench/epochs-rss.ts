/**
 * `npm run bench -- epochs-rss [--epochs N]`: resident memory of a whole training run, epoch by
 * epoch, with every epoch decoding and augmenting anew (no feature cache), so that a leak in any
 * stage (decode, prefetch, tensors, optimizer) would show as RSS growing with the epochs.
 */
import { fileURLToPath } from 'node:url';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { lastValueFrom } from 'rxjs';
import { useBackend } from '../src/backend.js';
import { experiment, getGraph } from '../src/graphs/index.js';
import { fixed, formatTable } from './table.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/caltech101-mini', import.meta.url));
const MB = 1024 * 1024;

export interface EpochRss {
  epoch: number;
  rssMB: number;
  numTensors: number;
  seconds: number;
}

export interface EpochsRssReport {
  rows: EpochRss[];
  /** RSS growth from the end of epoch 2 (warm: every buffer pool allocated once) to the last epoch. */
  growthMB: number;
  tensorsFlat: boolean;
}

export async function benchEpochsRss(epochs: number, limit = 120, imageSize = 96): Promise<EpochsRssReport> {
  const out = await mkdtemp(join(tmpdir(), 'rxcnn-epochs-rss-'));
  const rows: EpochRss[] = [];
  try {
    await lastValueFrom(
      experiment(getGraph('mobilenetv2'), { data: FIXTURES, limit, imageSize, epochs, cache: false, out }, {
        onEpoch: (h) => rows.push({ epoch: h.epoch, rssMB: process.memoryUsage().rss / MB, numTensors: tf.memory().numTensors, seconds: h.seconds }),
      }),
    );
  } finally {
    await rm(out, { recursive: true, force: true });
  }
  const warm = rows[Math.min(1, rows.length - 1)]!;
  return { rows, growthMB: rows.at(-1)!.rssMB - warm.rssMB, tensorsFlat: rows.every((r) => r.numTensors === rows[0]!.numTensors) };
}

export function formatEpochsRss(report: EpochsRssReport): string {
  const table = formatTable(
    ['epoch', 'RSS MB', 'numTensors', 'seconds'],
    report.rows.map((r) => [String(r.epoch), fixed(r.rssMB, 1), String(r.numTensors), fixed(r.seconds, 1)]),
  );
  return `${table}\nRSS from epoch 2 to ${report.rows.length}: ${report.growthMB >= 0 ? '+' : ''}${report.growthMB.toFixed(1)} MB; numTensors ${report.tensorsFlat ? 'flat' : 'NOT flat'}`;
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { epochs: { type: 'string' }, quick: { type: 'boolean' } }, strict: true });
  const epochs = Number(values.epochs ?? (values.quick ? 3 : 8));
  const backend = await useBackend('auto');
  console.log(`MobileNetV2-0.5 on ${backend.choice}, fixtures, 120 images at 96 px, decode + augment every epoch (no feature cache)`);
  console.log(formatEpochsRss(await benchEpochsRss(epochs)));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main(process.argv.slice(2));
