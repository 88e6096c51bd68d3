import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../core/files.js';
import type { ComparedReport, Comparison, ModelDetails } from './comparison.js';
import { mostConfused } from './confusion.js';
import { ensembleRow, ensembleSentence } from './ensemble.js';
import { historyCsv } from './csv.js';
import { plotsOf, renderComparisonHtml } from './html.js';
import { renderComparisonMarkdown } from './markdown.js';
import { accuracyVsSpeedSpec, confusionSpec, historySpec, renderPlot } from './plots.js';
import { summarize } from './summary.js';
import { rowOf } from './table.js';

export interface ComparedRun {
  graph: string;
  report: ComparedReport;
}

export interface ComparisonInput {
  /** The comparison folder; each run's files are in `<out>/<graph>/`, the shared split in `<out>/manifest.json`. */
  out: string;
  runs: readonly ComparedRun[];
  options: Record<string, unknown>;
  startedAt: Date;
}

/**
 * Writes a comparison's files from its runs' reports: per model a per-epoch CSV, a training-history
 * plot and a confusion heatmap; the ensemble row from the runs' kept test probabilities; the
 * accuracy-against-speed plot; `compare.json` (the single source),
 * then `compare.md` and `index.html` rendered from it.
 */
export async function writeComparison({ out, runs, options, startedAt }: ComparisonInput): Promise<Comparison> {
  const first = runs[0];
  if (!first) throw new Error('nothing to compare: no runs');
  const models = runs.map(({ graph, report }) => rowOf(graph, report));
  const details: ModelDetails[] = [];
  for (const [i, { graph, report }] of runs.entries()) {
    const row = models[i]!;
    const csv = `${graph}/history.csv`;
    await writeFileAtomic(join(out, csv), historyCsv(report.history));
    details.push({
      graph,
      dir: graph,
      report: `${graph}/report.md`,
      csv,
      history: report.history,
      bestEpoch: row.epochs.best,
      confusedPairs: mostConfused(report.metrics.confusion, report.dataset.classNames),
      plots: {
        history: await renderPlot(historySpec(row.model, report.history, row.epochs.best, row.epochs.validation), out, `${graph}-history`, `${row.model}: training and validation accuracy and loss per epoch`),
        confusion: await renderPlot(confusionSpec(row.model, report.dataset.classNames, report.metrics.confusion), out, `${graph}-confusion`, `${row.model}: confusion matrix of the test images`),
      },
    });
  }
  const d = first.report.dataset;
  const ensemble = await ensembleRow(out, models);
  const summary = summarize(models);
  const comparison: Comparison = {
    createdAt: startedAt.toISOString(),
    seconds: (Date.now() - startedAt.getTime()) / 1000,
    rankedBy: 'meanPerClass',
    split: { manifest: 'manifest.json', protocol: first.report.protocol, seed: first.report.seed, root: d.root, testRoot: d.testRoot, classes: d.classes, train: d.train, test: d.test },
    options,
    models,
    ensemble,
    summary: { ...summary, text: `${summary.text} ${ensembleSentence(ensemble, models)}` },
    details,
    plots: { accuracyVsSpeed: await renderPlot(accuracyVsSpeedSpec(models), out, 'accuracy-vs-speed', 'Mean per-class test accuracy against images/s; bubble area: parameters') },
  };
  await writeJsonAtomic(join(out, 'compare.json'), comparison);
  await renderComparisonFiles(out);
  return comparison;
}

/** Renders `compare.md` and `index.html` from `<out>/compare.json` and the plots beside it. */
export async function renderComparisonFiles(out: string): Promise<void> {
  const comparison = JSON.parse(await readFile(join(out, 'compare.json'), 'utf8')) as Comparison;
  const svgs = new Map(await Promise.all(plotsOf(comparison).map(async (p) => [p.svg, await readFile(join(out, p.svg), 'utf8')] as const)));
  await writeFileAtomic(join(out, 'compare.md'), renderComparisonMarkdown(comparison));
  await writeFileAtomic(join(out, 'index.html'), renderComparisonHtml(comparison, svgs));
}
