/**
 * `npm run bench` — per-operator throughput on real JPEGs (the embedded fixtures, and
 * ../shared/data/caltech101 when it is there). Figures go to the console and bench/results/<date>.json.
 * `npm run bench -- --quick` runs a tiny version; `npm run bench -- accuracy` the Caltech-101
 * transfer-learning accuracy table (bench/accuracy.ts).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../src/backend.js';
import { writeJsonAtomic } from '../src/core/files.js';
import { benchOperators, type BenchRow } from './operators.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURES = join(ROOT, 'fixtures/caltech101-mini');
const CALTECH101 = join(ROOT, '../shared/data/caltech101/101_ObjectCategories');

export function formatTable(rows: BenchRow[]): string {
  const lines = rows.map((r) => `${r.operator.padEnd(38)} ${r.itemsPerSecond.toFixed(1).padStart(10)} ${`${r.ratio.toFixed(2)}×`.padStart(8)}`);
  return [`${'operator'.padEnd(38)} ${'items/s'.padStart(10)} ${'ratio'.padStart(8)}`, ...lines].join('\n');
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ options: { quick: { type: 'boolean' }, backend: { type: 'string' }, out: { type: 'string' } }, allowPositionals: true });
  if (positionals[0] === 'accuracy') {
    await import('./accuracy.js').then((m) => m.main());
    return;
  }
  if (positionals.length > 0) throw new Error(`unknown bench '${positionals[0]}'; known: (default: operators), accuracy`);
  const backend = await useBackend((values.backend ?? 'auto') as Parameters<typeof useBackend>[0]);
  const datasets = values.quick ? [FIXTURES] : [FIXTURES, ...(existsSync(CALTECH101) ? [CALTECH101] : [])];
  const results: Record<string, BenchRow[]> = {};
  for (const data of datasets) {
    const rows = await benchOperators(
      values.quick ? { data, images: 8, size: 64, batch: 4, time: 50 } : { data, images: 128, size: 224, batch: 32, time: 3000 },
    );
    results[data] = rows;
    console.log(`\n${data} — backend ${backend.choice}, numTensors after: ${tf.memory().numTensors}\n${formatTable(rows)}`);
  }
  const out = values.out ?? join(ROOT, 'bench/results', `${new Date().toISOString().slice(0, 10)}.json`);
  await writeJsonAtomic(out, { date: new Date().toISOString(), backend: backend.choice, node: process.version, results });
  console.log(`\nresults: ${out}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error: unknown) => {
    console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
}
