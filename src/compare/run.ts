import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { concatMap, defer, from, toArray, type Observable } from 'rxjs';
import { writeFileAtomic } from '../core/files.js';
import { BASE_OPTIONS, experiment, getGraph, type ExperimentHooks, type ExperimentOptions } from '../graphs/index.js';
import type { Manifest } from '../operators/split.js';
import type { ComparedReport, Comparison } from './comparison.js';
import { writeComparison, type ComparedRun } from './output.js';
import { splitDifference } from './same-split.js';

export interface CompareRequest {
  /** Graph names, in table order. */
  graphs: readonly string[];
  /** Options for every model (each graph's defaults fill the rest, except what defines the split). */
  options: Partial<ExperimentOptions> & Pick<ExperimentOptions, 'data'>;
  /** The comparison folder. */
  out: string;
}

export interface CompareHooks extends ExperimentHooks {
  /** Before each model's run. */
  onRun?: (graph: string, index: number, total: number) => void;
  /** After each model's run, once its split is verified. */
  onRunDone?: (graph: string, report: ComparedReport) => void;
}

/**
 * Runs each graph in turn on the same split (same data, protocol, seed, limit, exclusions), each
 * into `<out>/<graph>/`; keeps the split once as `<out>/manifest.json` and refuses a run whose
 * split differs. Then writes the comparison (table, plots, CSVs, index.html) and emits it.
 */
export function compare({ graphs, options, out }: CompareRequest, hooks: CompareHooks = {}): Observable<Comparison> {
  return defer(() => {
    if (graphs.length < 2) throw new Error('name at least two graphs to compare');
    const repeated = graphs.find((g, i) => graphs.indexOf(g) !== i);
    if (repeated) throw new Error(`graph '${repeated}' is named twice`);
    const definitions = graphs.map((name) => getGraph(name));
    const startedAt = new Date();
    // What defines the split is fixed here, so no graph's defaults can change it.
    const shared = { ...options, protocol: options.protocol ?? BASE_OPTIONS.protocol, seed: options.seed ?? BASE_OPTIONS.seed, exclude: options.exclude ?? BASE_OPTIONS.exclude };
    let reference: { graph: string; manifest: Manifest } | null = null;

    const verifySplit = async (graph: string) => {
      const path = join(out, graph, 'manifest.json');
      const text = await readFile(path, 'utf8');
      const manifest = JSON.parse(text) as Manifest;
      if (reference === null) {
        reference = { graph, manifest };
        await writeFileAtomic(join(out, 'manifest.json'), text);
      } else {
        const difference = splitDifference(reference.manifest, manifest);
        if (difference) throw new Error(`${graph} ran on another split than ${reference.graph} (${difference}); every model of a comparison must see the same split — was the dataset changed during the comparison?`);
      }
      await rm(path);
    };

    return from(definitions).pipe(
      concatMap((graph, index) =>
        defer(() => {
          hooks.onRun?.(graph.name, index, definitions.length);
          return experiment(graph, { ...shared, out: join(out, graph.name) }, hooks);
        }).pipe(
          concatMap(async (report): Promise<ComparedRun> => {
            await verifySplit(graph.name);
            hooks.onRunDone?.(graph.name, report);
            return { graph: graph.name, report };
          }),
        ),
      ),
      toArray(),
      concatMap((runs) => writeComparison({ out, runs, options: shared, startedAt })),
    );
  });
}
