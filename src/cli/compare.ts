import { fileURLToPath } from 'node:url';
import { lastValueFrom } from 'rxjs';
import { useBackend } from '../backend.js';
import { compare, loadCompareRequest } from '../compare/run.js';
import { resolveDataOptions } from '../datasets/fetch.js';
import { getGraph, listGraphs } from '../graphs/index.js';
import { ENSEMBLE_MODEL, getVariant } from '../models/index.js';
import { EXPERIMENT_FLAG_USAGE, graphsUsage, parseFlags, type ExperimentFlags } from './flags.js';
import { progressReporter } from './progress.js';
import { fail, stopOnSignals } from './signals.js';
import { percent } from '../core/format.js';

const USAGE = `usage: npm run compare -- <graph> <graph> … [flags]
Runs every graph on the same split and seed, then writes compare.json, compare.md, index.html,
plots (SVG and PNG) and per-epoch CSVs into one folder.
${EXPERIMENT_FLAG_USAGE}
  --out DIR           comparison folder (default runs/compare-<time>)   --quiet
  --resume DIR        continue the comparison in DIR: finished models kept, an interrupted one resumed from its checkpoint (only --backend/--quiet may be given)`;

export interface CompareCommand {
  graphs: string[];
  flags: ExperimentFlags;
  out: string;
  /** Continue the comparison in `out` with its saved graphs and options. */
  resume?: boolean;
}

/** `npm run compare` arguments; unknown graphs, flags or values fail with one line. */
export function parseCompareCommandLine(argv: string[]): CompareCommand | 'help' {
  const parsed = parseFlags(argv, { resume: { type: 'string' } });
  if (parsed.help) return 'help';
  const resume = parsed.extra['resume'];
  if (typeof resume === 'string') {
    const extra = parsed.given.filter((flag) => !['resume', 'backend', 'quiet'].includes(flag));
    if (extra.length > 0 || parsed.positionals.length > 0) throw new Error(`--resume continues a comparison with its own graphs and options; drop ${[...parsed.positionals, ...extra.map((f) => `--${f}`)].join(', ')}`);
    return { graphs: [], flags: parsed.flags, out: resume, resume: true };
  }
  if (parsed.positionals.length < 2) throw new Error(`name at least two graphs to compare: ${listGraphs().map((g) => g.name).join(', ')}`);
  const definitions = parsed.positionals.map((name) => getGraph(name)); // an unknown name fails here, before the backend starts
  const members = parsed.flags.options.members;
  if (members && !definitions.some((g) => g.model === ENSEMBLE_MODEL)) throw new Error('--members is for the ensemble graph, and no ensemble graph is compared');
  members?.forEach((name) => getVariant(name));
  const time = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  return { graphs: parsed.positionals, flags: parsed.flags, out: parsed.flags.out ?? `runs/compare-${time}` };
}

async function main(argv: string[]): Promise<number> {
  const command = parseCompareCommandLine(argv);
  if (command === 'help') {
    console.log(`${USAGE}\n${graphsUsage()}`);
    return 0;
  }
  const { flags, out } = command;
  const request = command.resume ? await loadCompareRequest(out) : { graphs: command.graphs, options: flags.options, out };
  const say = (line: string) => flags.quiet || console.error(line);
  Object.assign(flags.options, await resolveDataOptions(flags.options, { progress: !flags.quiet, say })); // dataset names (--data caltech256) → their folders, fetched when missing
  const active = await useBackend(flags.backend);
  say(`backend: ${active.choice}${active.skipped.map((s) => `\n  skipped ${s.choice}: ${s.reason}`).join('')}`);
  let current = '';
  let progress = progressReporter(true);
  const signal = stopOnSignals(say, () => progress.stop());
  const comparison = await lastValueFrom(
    compare(
      request,
      {
        signal,
        onRun: (graph, index, total) => {
          current = `[${index + 1}/${total} ${graph}] `;
          progress = progressReporter(flags.quiet, current);
          say(`${current}running`);
        },
        onProgress: (p) => progress.update(p),
        onSkip: (s) => say(`${current}skipped ${s.path}: ${s.reason}`),
        onWarning: (line) => say(`${current}warning: ${line}`),
        onEpoch: (h, epochs) => {
          progress.stop();
          say(`${current}epoch ${h.epoch}/${epochs}: loss ${h.loss.toFixed(3)} top-1 ${percent(h.top1)} | val loss ${h.valLoss.toFixed(3)} val top-1 ${percent(h.valTop1)} | ${h.seconds.toFixed(1)} s`);
        },
        onRunDone: (_, report) => {
          progress.stop();
          const m = report.metrics;
          say(`${current}test${m.tta === 'flip' ? ' (flip TTA)' : ''}: top-1 ${percent(m.top1)}, mean per-class ${percent(m.meanPerClass)} | full pass ${report.speed.fullPassSeconds.toFixed(1)} s (${report.speed.imagesPerSecond.toFixed(1)} images/s) | weights ${report.weights}`);
        },
      },
    ),
  ).finally(() => progress.stop());
  say(comparison.summary.text);
  console.log(`comparison: ${out}/compare.md and ${out}/index.html`);
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then((code) => (process.exitCode = code), fail);
}
