/**
 * `npm run bench` — the benchmark suite on real JPEGs (the embedded fixtures, and
 * ../shared/data/caltech101 when it is there): per-operator throughput, the decode operator's
 * overhead over the bare decoding library, decode/compute overlap, and the prefetch memory bound. Tables go to the
 * console, figures to bench/results/<date>.json.
 *
 *   npm run bench -- --quick             tiny version of the suite (seconds)
 *   npm run bench -- --only overlap      some sections: operators, overhead, overlap, memory
 *   npm run bench -- --models all        forward/train rows for every architecture (slow: VGG-19 …)
 *   npm run bench -- peer [--quick]      PyTorch DataLoader and torchvision MobileNetV2 vs rxcnn
 *   npm run bench -- accuracy            Caltech-101 accuracy of the plain command, ensembles, TTA, two-stage (bench/accuracy.ts)
 *   npm run bench -- two-stage           the two-stage recipe's validation curve (bench/two-stage.ts)
 *   npm run bench -- recipes             each model's head recipe chosen on validation splits of the training part (bench/recipes.ts)
 *   npm run bench -- backends | render   bench/backends.ts, bench/render-check.ts
 *   npm run bench -- engines             ONNX Runtime on rxcnn's ONNX export vs tfjs-wasm workers (bench/engines.ts)
 *   npm run bench -- epochs-rss          resident memory epoch by epoch (bench/epochs-rss.ts)
 */
import { existsSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { useBackend, type BackendChoice } from '../src/backend.js';
import { writeJsonAtomic } from '../src/core/files.js';
import { listModels } from '../src/models/index.js';
import { benchImages, CALTECH101, FIXTURES } from './images.js';
import { benchMemory, formatMemoryTable } from './memory.js';
import { benchOperators, formatOperatorTable, parseModelSpec } from './operators.js';
import { benchOverhead, formatOverheadTable } from './overhead.js';
import { benchOverlap, formatOverlapTable } from './overlap.js';
import { benchPeer, findTorchPython, formatPeerReport, HOW_TO_INSTALL_TORCH } from './peer.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SECTIONS = ['operators', 'overhead', 'overlap', 'memory'] as const;
type Section = (typeof SECTIONS)[number];
const DEFAULT_MODELS = 'mobilenetv2:0.5,mobilenetv1:0.25,squeezenet';

/** Benches that live in files of their own, each exporting `main(argv)`. */
const DELEGATED: Record<string, string> = { accuracy: './accuracy.js', recipes: './recipes.js', 'two-stage': './two-stage.js', backends: './backends.js', engines: './engines.js', render: './render-check.js', 'epochs-rss': './epochs-rss.js' };

const today = () => new Date().toISOString().slice(0, 10);
const load = () => loadavg().map((l) => l.toFixed(2)).join(', ');

function section(title: string): void {
  console.log(`\n## ${title}\n`);
}

async function delegate(name: string, argv: string[]): Promise<void> {
  const file = DELEGATED[name]!;
  let module: { main?: (argv: string[]) => Promise<void> };
  try {
    module = (await import(file)) as typeof module;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && !existsSync(fileURLToPath(new URL(file.replace(/\.js$/, '.ts'), import.meta.url)))) {
      throw new Error(`bench '${name}' is not available: bench/${file.slice(2).replace(/\.js$/, '.ts')} does not exist yet`);
    }
    throw error;
  }
  if (typeof module.main !== 'function') throw new Error(`bench/${file.slice(2).replace(/\.js$/, '.ts')} exports no main(argv)`);
  await module.main(argv);
}

async function peer(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { quick: { type: 'boolean' }, images: { type: 'string' }, backend: { type: 'string', default: 'auto' }, python: { type: 'string' }, out: { type: 'string' } } });
  const found = findTorchPython(values.python ? [values.python] : undefined);
  if ('missing' in found) throw new Error(`the peer comparison needs python3 with torch and torchvision (${found.missing}); install them with: ${HOW_TO_INSTALL_TORCH}`);
  const backend = await useBackend(values.backend as BackendChoice);
  const quick = values.quick ?? false;
  const count = Number(values.images ?? (quick ? 64 : 1000));
  if (!Number.isInteger(count) || count < 1) throw new Error(`--images takes a positive integer, got '${values.images}'`);
  const images = await benchImages(count);
  console.log(`load average before: ${load()}`);
  const cores = availableParallelism();
  const report = await benchPeer({ samples: images.samples, source: images.source, size: 224, batch: 32, workers: cores, cores, widths: quick ? [0.5] : [1.0, 0.5], rounds: quick ? 1 : 3, modelBatches: quick ? 1 : 8, profileImages: quick ? 32 : 300, python: found.python });
  section(`Peer comparison — backend ${backend.choice}`);
  console.log(formatPeerReport(report));
  const loadAfter = load();
  console.log(`\nload average after: ${loadAfter}`);
  const out = values.out ?? join(ROOT, 'bench/results', `peer-${today()}.json`);
  await writeJsonAtomic(out, { date: new Date().toISOString(), node: process.version, loadAverage: loadAfter, ...report });
  console.log(`results: ${out}`);
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  const head = argv.find((a) => !a.startsWith('-'));
  if (head && head in DELEGATED) return delegate(head, argv.filter((a) => a !== head));
  if (head === 'peer') return peer(argv.filter((a) => a !== head));
  const { values, positionals } = parseArgs({
    args: argv,
    options: { quick: { type: 'boolean' }, backend: { type: 'string', default: 'auto' }, out: { type: 'string' }, only: { type: 'string' }, models: { type: 'string', default: DEFAULT_MODELS } },
    allowPositionals: true,
  });
  if (positionals.length > 0) throw new Error(`unknown bench '${positionals[0]}'; known: (default suite), peer, ${Object.keys(DELEGATED).join(', ')}`);
  const only = (values.only?.split(',') ?? SECTIONS) as Section[];
  const unknown = only.filter((s) => !SECTIONS.includes(s));
  if (unknown.length > 0) throw new Error(`unknown section '${unknown[0]}'; known: ${SECTIONS.join(', ')}`);
  const models = values.models === 'all' ? listModels().map((d) => d.name) : values.models.split(',');
  models.forEach(parseModelSpec);
  const quick = values.quick ?? false;

  const backend = await useBackend(values.backend as BackendChoice);
  console.log(`backend ${backend.choice}; sharp.concurrency() ${sharp.concurrency()}, UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}; load average ${load()}`);
  const results: Record<string, unknown> = {};
  const started = performance.now();

  if (only.includes('operators')) {
    const datasets = quick ? [FIXTURES] : [FIXTURES, ...(existsSync(CALTECH101) ? [CALTECH101] : [])];
    if (!quick && datasets.length === 1) console.log('(../shared/data/caltech101 is absent: operator figures are for the embedded fixtures only)');
    const perDataset: Record<string, unknown> = {};
    for (const data of datasets) {
      const rows = await benchOperators(quick ? { data, images: 8, size: 32, batch: 4, time: 20, models: ['mobilenetv2:0.5'] } : { data, images: 128, size: 224, batch: 32, time: 3000, models });
      perDataset[data] = rows;
      section(`Operators — ${data}`);
      console.log(formatOperatorTable(rows));
    }
    results.operators = perDataset;
  }

  if (only.includes('overhead')) {
    // Passes of 1,000 photos, as the peer bench's: a pass of a hundred (~60 ms on 2 cores) is mostly
    // the threads filling and draining, which a real pass over a dataset pays once.
    const decodeImages = await benchImages(quick ? 8 : 1000);
    const rows = await benchOverhead({ samples: decodeImages.samples, size: quick ? 32 : 224, concurrencies: [1, 2, 4], rounds: quick ? 1 : 3, time: quick ? 10 : 1500 });
    results.overhead = { source: decodeImages.source, rows };
    section(`Decode operator vs the bare library loop — ${decodeImages.source}`);
    console.log(formatOverheadTable(rows));
  }

  if (only.includes('overlap')) {
    const images = await benchImages(quick ? 8 : 160);
    const setups = quick
      ? [{ concurrency: 2, sharpThreads: 1, workers: 1 }]
      : [
          // One or two decoding threads (one per core is the default) beside the model on the main
          // thread or on one or two compute workers: every combination of the two stages' threads.
          ...[1, 2].flatMap((concurrency) => [0, 1, 2].map((workers) => ({ concurrency, sharpThreads: 1, workers }))),
        ];
    const report = await benchOverlap({ samples: images.samples, size: quick ? 32 : 224, batch: quick ? 4 : 32, prefetchBatches: 4, setups, model: { name: 'mobilenetv2', alpha: 0.5 }, iterations: quick ? 1 : 2 });
    results.overlap = { source: images.source, ...report };
    section(`Overlap — ${images.source}`);
    console.log(formatOverlapTable(report));
  }

  if (only.includes('memory')) {
    const images = await benchImages(quick ? 40 : 640);
    const report = await benchMemory({ pool: images.samples, images: quick ? 40 : 640, size: quick ? 32 : 224, batch: quick ? 4 : 16, prefetchBatches: 2, slowdown: 10 });
    results.memory = { source: images.source, ...report };
    section(`Memory bound — consumer 10× slower than decoding; ${images.source}`);
    console.log(formatMemoryTable(report));
  }

  const seconds = (performance.now() - started) / 1000;
  const out = values.out ?? join(ROOT, 'bench/results', `${today()}.json`);
  await writeJsonAtomic(out, { date: new Date().toISOString(), backend: backend.choice, node: process.version, loadAverage: load(), seconds, quick, ...results });
  console.log(`\n${seconds.toFixed(0)} s; load average ${load()}; numTensors ${tf.memory().numTensors}\nresults: ${out}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error: unknown) => {
    console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
}
