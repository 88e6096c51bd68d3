/**
 * `npm run bench -- accuracy`: transfer learning on Caltech-101 from ../shared (101 classes,
 * BACKGROUND_Google excluded) with every architecture whose ImageNet weights are available offline.
 * The head (the same setting for every model, chosen on a validation split carved from the training
 * part, never on the test images): features L2-normalised to length 10, softmax, class-balanced
 * loss, L2 1e-4, Adam lr 1e-3, batch 32, 30 epochs.
 * Prints mean per-class test accuracy (the Caltech figure), top-1, the study's average accuracy and
 * times; writes bench/results/accuracy-<date>.json. Takes about 20 minutes on 2 cores
 * with the default inference workers (each run 3–5 minutes).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lastValueFrom } from 'rxjs';
import { useBackend } from '../src/backend.js';
import { writeJsonAtomic } from '../src/core/files.js';
import { experiment, getGraph } from '../src/graphs/index.js';
import type { ExperimentOptions } from '../src/graphs/graph.js';
import type { Report } from '../src/report.js';
import { percent } from '../src/core/format.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SHARED = join(ROOT, '../shared');
const DATA = join(SHARED, 'data/caltech101/101_ObjectCategories');
/** The offline Keras ImageNet files, found there by their published names. */
const WEIGHTS_DIR = join(SHARED, 'weights/keras');

interface Run {
  graph: string;
  protocol: string;
  alpha?: number;
}

const RUNS: Run[] = [
  { graph: 'mobilenetv2', protocol: 'ratio:0.8' },
  { graph: 'mobilenetv1', protocol: 'ratio:0.8' },
  { graph: 'squeezenet', protocol: 'ratio:0.8' },
  { graph: 'mobilenetv2', protocol: 'ratio:0.8', alpha: 0.35 },
  { graph: 'mobilenetv2', protocol: 'per-class:30' },
];

export interface AccuracyRow {
  model: string;
  protocol: string;
  classes: number;
  train: number;
  test: number;
  meanPerClass: number;
  top1: number;
  top5: number;
  studyAverage: number;
  epochs: number;
  firstEpochSeconds: number;
  laterEpochSeconds: number;
  fullPassSeconds: number;
  seconds: number;
}

export function row(report: Report): AccuracyRow {
  const later = report.history.slice(1);
  return {
    model: report.model,
    protocol: report.protocol,
    classes: report.dataset.classes,
    train: report.dataset.train,
    test: report.dataset.test,
    meanPerClass: report.metrics.meanPerClass,
    top1: report.metrics.top1,
    top5: report.metrics.top5,
    studyAverage: report.metrics.studyAverage,
    epochs: report.history.length,
    firstEpochSeconds: report.history[0]!.seconds,
    laterEpochSeconds: later.length ? later.reduce((s, h) => s + h.seconds, 0) / later.length : NaN,
    fullPassSeconds: report.speed.fullPassSeconds,
    seconds: report.seconds,
  };
}

export function formatAccuracy(rows: readonly AccuracyRow[]): string {
  const header = '| model | protocol | train / test | mean per-class | top-1 | top-5 | study "average" | epoch 1 s | later epoch s | full pass s | run s |';
  const lines = rows.map(
    (r) =>
      `| ${r.model} | ${r.protocol} | ${r.train} / ${r.test} | ${percent(r.meanPerClass)} | ${percent(r.top1)} | ${percent(r.top5)} | ${percent(r.studyAverage)} | ${r.firstEpochSeconds.toFixed(0)} | ${r.laterEpochSeconds.toFixed(2)} | ${r.fullPassSeconds.toFixed(0)} | ${r.seconds.toFixed(0)} |`,
  );
  return [header, '|---|---|---|---|---|---|---|---|---|---|---|', ...lines].join('\n');
}

/** The head's setting for every run (see the comment at the top); `satisfies` so a field experiment() lacks is an error, not silently dropped. */
export const HEAD = { epochs: 30, classWeights: 'balanced', l2: 1e-4, featureNorm: 10 } as const satisfies Partial<ExperimentOptions>;

export async function benchAccuracy(runs: readonly Run[] = RUNS, epochs: number = HEAD.epochs): Promise<AccuracyRow[]> {
  if (!existsSync(DATA)) throw new Error(`Caltech-101 not found at ${DATA}; this benchmark needs ../shared/data/caltech101`);
  const backend = await useBackend('auto');
  const rows: AccuracyRow[] = [];
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  for (const run of runs) {
    const out = join(ROOT, 'runs', `accuracy-${stamp}`, `${run.graph}${run.alpha ? `-${run.alpha}` : ''}-${run.protocol.replace(':', '')}`);
    const report = await lastValueFrom(
      experiment(getGraph(run.graph), { data: DATA, exclude: ['BACKGROUND_Google'], protocol: run.protocol, seed: 0, ...HEAD, epochs, out, weightsDir: WEIGHTS_DIR, ...(run.alpha ? { alpha: run.alpha } : {}) }),
    );
    rows.push(row(report));
    console.log(`${formatAccuracy(rows.slice(-1)).split('\n').pop()}  (${backend.choice}, report ${out}/report.md)`);
  }
  return rows;
}

export async function main(): Promise<void> {
  const rows = await benchAccuracy();
  console.log(`\n${formatAccuracy(rows)}`);
  const out = join(ROOT, 'bench/results', `accuracy-${new Date().toISOString().slice(0, 10)}.json`);
  await writeJsonAtomic(out, { date: new Date().toISOString(), rows });
  console.log(`results: ${out}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
