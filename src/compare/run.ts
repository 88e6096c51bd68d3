import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { catchError, concatMap, defer, from, of, toArray, type Observable } from 'rxjs';
import { writeJsonAtomic } from '../core/files.js';
import { BASE_OPTIONS, experiment, getGraph, type ExperimentHooks, type ExperimentOptions } from '../graphs/index.js';
import { RunInterrupted } from '../graphs/experiment.js';
import type { Manifest } from '../operators/split.js';
import { prepareData, writeManifest } from '../stages/data.js';
import { splitDifference } from './same-split.js';
import type { ComparedReport, Comparison } from './comparison.js';
import { writeComparison, type ComparedRun } from './output.js';

export interface CompareRequest {
  /** Graph names, in table order. */
  graphs: readonly string[];
  /** Options for every model (each graph's defaults fill the rest, except what defines the split). */
  options: Partial<ExperimentOptions> & Pick<ExperimentOptions, 'data'>;
  /** The comparison folder. */
  out: string;
  /** Continue the comparison in `out`: finished models are kept, an interrupted one resumes from its checkpoint. */
  resume?: boolean;
}

export interface CompareHooks extends ExperimentHooks {
  /** Before each model's run. */
  onRun?: (graph: string, index: number, total: number) => void;
  /** After each model's run (or, resuming, for each model finished before). */
  onRunDone?: (graph: string, report: ComparedReport) => void;
}

/** What `compare --resume` continues with, saved when a comparison starts. */
export const REQUEST_FILE = 'compare-request.json';

/** The command that continues the comparison in `out`. */
export const compareResumeCommand = (out: string) => `npm run compare -- --resume ${JSON.stringify(out)}`;

/** The graphs and options of the comparison in `out`, for `--resume`. */
export async function loadCompareRequest(out: string): Promise<CompareRequest> {
  const text = await readFile(join(out, REQUEST_FILE), 'utf8').catch(() => null);
  if (text === null) throw new Error(`nothing to resume in ${out}: it has no ${REQUEST_FILE} (written when a comparison starts)`);
  const saved = JSON.parse(text) as Pick<CompareRequest, 'graphs' | 'options'>;
  return { graphs: saved.graphs, options: saved.options, out, resume: true };
}

/**
 * Prepares the data once (same data, protocol, seed, limit, exclusions for every model), keeps
 * its manifest as `<out>/manifest.json`, then runs each graph in turn on that very split, each
 * into `<out>/<graph>/`. Then writes the comparison (table, plots, CSVs, index.html) and emits it.
 * Interrupted, it fails with a {@link RunInterrupted} whose `resume` continues the comparison.
 */
export function compare({ graphs, options, out, resume = false }: CompareRequest, hooks: CompareHooks = {}): Observable<Comparison> {
  return defer(async () => {
    if (graphs.length < 2) throw new Error('name at least two graphs to compare');
    const repeated = graphs.find((g, i) => graphs.indexOf(g) !== i);
    if (repeated) throw new Error(`graph '${repeated}' is named twice`);
    const definitions = graphs.map((name) => getGraph(name));
    // What defines the split is fixed here, so no graph's defaults can change it.
    const shared = { ...options, protocol: options.protocol ?? BASE_OPTIONS.protocol, seed: options.seed ?? BASE_OPTIONS.seed, exclude: options.exclude ?? BASE_OPTIONS.exclude };
    const prepared = await prepareData(shared);
    if (resume) {
      const saved = await readFile(join(out, 'manifest.json'), 'utf8').catch(() => null);
      const difference = saved === null ? null : splitDifference(JSON.parse(saved) as Manifest, prepared.manifest);
      if (difference) throw new Error(`the data or split changed since the comparison in ${out} started (${difference}); every model of a comparison must see the same split`);
    }
    await writeManifest(out, prepared.manifest, false);
    if (!resume) await writeJsonAtomic(join(out, REQUEST_FILE), { graphs, options });
    return { definitions, shared, prepared, startedAt: new Date() };
  }).pipe(
    concatMap(({ definitions, shared, prepared, startedAt }) =>
      from(definitions).pipe(
        concatMap((graph, index) =>
          defer(async () => (resume ? finishedReport(join(out, graph.name)) : null)).pipe(
            concatMap((finished) => {
              if (finished) return of(finished);
              hooks.onRun?.(graph.name, index, definitions.length);
              return experiment(graph, { ...shared, out: join(out, graph.name), ...(resume ? { resume: true } : {}) }, hooks, { prepared });
            }),
            concatMap(async (report): Promise<ComparedRun> => {
              hooks.onRunDone?.(graph.name, report);
              return { graph: graph.name, report };
            }),
          ),
        ),
        toArray(),
        concatMap((runs) => writeComparison({ out, runs, options: shared, startedAt })),
      ),
    ),
    catchError((error: unknown) => {
      throw error instanceof RunInterrupted ? new RunInterrupted(error.reason, error.partialReport, error.epochsDone, compareResumeCommand(out)) : error;
    }),
  );
}

/** The report of a model the comparison finished before it was interrupted, or null. */
async function finishedReport(dir: string): Promise<ComparedReport | null> {
  const text = await readFile(join(dir, 'report.json'), 'utf8').catch(() => null);
  return text === null ? null : (JSON.parse(text) as ComparedReport);
}
