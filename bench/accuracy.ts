/**
 * `npm run bench -- accuracy [--only defaults,ensemble,per-class,two-stage]`: what the plain command
 * gives on Caltech-101 from ../shared (101 classes, BACKGROUND_Google excluded), with every
 * architecture whose ImageNet weights are available offline. No head flags are passed: each graph
 * runs its own recipe (src/graphs/recipes.ts), as a user who types `npm run graph -- <model>` gets.
 * Every run asks for flip TTA, so one run gives both test figures: the plain images' (the headline
 * a run without `--tta` prints) and the flip-averaged ones.
 *
 * Sections:
 * - `defaults`: `compare` of the four offline models on `ratio:0.8 --seed 0` (one split for all),
 *   with compare's ensemble row (the members' test probabilities averaged);
 * - `ensemble`: the `ensemble` graph (one head on the four backbones' concatenated features), same split;
 * - `per-class`: MobileNetV2-0.5 on `per-class:30` (Caltech's own protocol);
 * - `two-stage`: the `mobilenetv2-finetune` graph (head, then the top blocks fine-tuned).
 * Prints mean per-class test accuracy (the Caltech figure), top-1, top-5, the study's "average"
 * (train images mixed in, labelled) and times; writes bench/results/accuracy-<date>.json.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { lastValueFrom } from 'rxjs';
import { useBackend } from '../src/backend.js';
import { compare } from '../src/compare/run.js';
import { writeJsonAtomic } from '../src/core/files.js';
import { percent } from '../src/core/format.js';
import { experiment, getGraph } from '../src/graphs/index.js';
import type { ExperimentOptions } from '../src/graphs/graph.js';
import type { Report } from '../src/report.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SHARED = join(ROOT, '../shared');
const DATA = join(SHARED, 'data/caltech101/101_ObjectCategories');
/** The offline Keras ImageNet files, found there by their published names. */
const WEIGHTS_DIR = join(SHARED, 'weights/keras');
/** The four architectures with offline ImageNet weights, as their graphs are named. */
export const OFFLINE_MODELS = ['mobilenetv2_050', 'mobilenetv1_025', 'squeezenet', 'mobilenetv2_035'] as const;
const SECTIONS = ['defaults', 'ensemble', 'per-class', 'two-stage'] as const;
type Section = (typeof SECTIONS)[number];

export interface AccuracyRow {
  graph: string;
  model: string;
  protocol: string;
  train: number;
  test: number;
  /** The plain test images' figures: what a run without `--tta` reports. */
  meanPerClass: number;
  top1: number;
  top5: number;
  /** The same test images with flip TTA; null where the row has no run of its own (compare's ensemble row averages the members' TTA probabilities). */
  flipMeanPerClass: number | null;
  studyAverage: number | null;
  epochs: number | null;
  seconds: number | null;
}

/** A report's row: the plain figures from `metrics.plain` when the run used flip TTA. */
export function row(graph: string, report: Report): AccuracyRow {
  const plain = report.metrics.plain ?? report.metrics;
  return {
    graph,
    model: report.model,
    protocol: report.protocol,
    train: report.dataset.train,
    test: report.dataset.test,
    meanPerClass: plain.meanPerClass,
    top1: plain.top1,
    top5: plain.top5,
    flipMeanPerClass: report.metrics.plain ? report.metrics.meanPerClass : null,
    studyAverage: report.metrics.studyAverage,
    epochs: report.history.length,
    seconds: report.seconds,
  };
}

const cell = (x: number | null, format: (x: number) => string) => (x === null ? '—' : format(x));

export function formatAccuracy(rows: readonly AccuracyRow[]): string {
  const header = '| graph (model) | protocol | train / test | mean per-class | with flip TTA | top-1 | top-5 | study "average" (train mixed in) | epochs | run s |';
  const lines = rows.map(
    (r) =>
      `| ${r.graph} (${r.model}) | ${r.protocol} | ${r.train} / ${r.test} | ${percent(r.meanPerClass)} | ${cell(r.flipMeanPerClass, percent)} | ${percent(r.top1)} | ${percent(r.top5)} | ${cell(r.studyAverage, percent)} | ${cell(r.epochs, String)} | ${cell(r.seconds, (s) => s.toFixed(0))} |`,
  );
  return [header, '|---|---|---|---|---|---|---|---|---|---|', ...lines].join('\n');
}

const USUAL: Partial<ExperimentOptions> & Pick<ExperimentOptions, 'data'> = { data: DATA, exclude: ['BACKGROUND_Google'], protocol: 'ratio:0.8', seed: 0, weightsDir: WEIGHTS_DIR, tta: 'flip' };

async function single(graph: string, options: Partial<ExperimentOptions>, out: string): Promise<AccuracyRow> {
  const report = await lastValueFrom(experiment(getGraph(graph), { ...USUAL, ...options, out }));
  return row(graph, report);
}

export async function benchAccuracy(sections: readonly Section[], say: (row: AccuracyRow) => void): Promise<AccuracyRow[]> {
  if (!existsSync(DATA)) throw new Error(`Caltech-101 not found at ${DATA}; this benchmark needs ../shared/data/caltech101`);
  await useBackend('auto');
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const runs = join(ROOT, 'runs', `accuracy-${stamp}`);
  const rows: AccuracyRow[] = [];
  const add = (r: AccuracyRow) => (rows.push(r), say(r));
  if (sections.includes('defaults')) {
    const reports = new Map<string, Report>();
    const comparison = await lastValueFrom(compare({ graphs: OFFLINE_MODELS, options: USUAL, out: join(runs, 'compare') }, { onRunDone: (graph, report) => reports.set(graph, report as Report) }));
    for (const graph of OFFLINE_MODELS) add(row(graph, reports.get(graph)!));
    const e = comparison.ensemble;
    if (!e || 'skipped' in e) throw new Error(`compare left its ensemble row out: ${e?.skipped ?? 'no row'}`);
    const first = rows[0]!;
    add({ graph: 'compare ensemble row', model: `mean of ${e.members.length} members' ${e.tta === 'flip' ? 'flip-TTA ' : ''}probabilities`, protocol: first.protocol, train: first.train, test: e.images, meanPerClass: e.meanPerClass, top1: e.top1, top5: e.top5, flipMeanPerClass: null, studyAverage: null, epochs: null, seconds: null });
  }
  if (sections.includes('ensemble')) add(await single('ensemble', {}, join(runs, 'ensemble')));
  if (sections.includes('per-class')) add(await single('mobilenetv2_050', { protocol: 'per-class:30' }, join(runs, 'mobilenetv2_050-per-class30')));
  if (sections.includes('two-stage')) add(await single('mobilenetv2-finetune', {}, join(runs, 'mobilenetv2-finetune')));
  return rows;
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { only: { type: 'string' } } });
  const sections = (values.only?.split(',') ?? SECTIONS) as Section[];
  const unknown = sections.find((s) => !SECTIONS.includes(s));
  if (unknown) throw new Error(`unknown section '${unknown}'; known: ${SECTIONS.join(', ')}`);
  const started = performance.now();
  const rows = await benchAccuracy(sections, (r) => console.log(formatAccuracy([r]).split('\n').pop()));
  console.log(`\n${formatAccuracy(rows)}\n\n${((performance.now() - started) / 1000).toFixed(0)} s`);
  const out = join(ROOT, 'bench/results', `accuracy-${new Date().toISOString().slice(0, 10)}.json`);
  await writeJsonAtomic(out, { date: new Date().toISOString(), sections, rows });
  console.log(`results: ${out}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
