import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lastValueFrom } from 'rxjs';
import { useBackend, type BackendChoice } from '../backend.js';
import { describeEngine } from '../engines/engine.js';
import { CHECKPOINT_DIR, type CheckpointState } from '../graphs/experiment.js';
import { experiment, getGraph, listGraphs, type ExperimentOptions } from '../graphs/index.js';
import { assertDatasetFolder } from '../operators/discover.js';
import { resolveDataOptions } from '../datasets/fetch.js';
import { loadCheckpointState } from '../training/checkpoint.js';
import { ENSEMBLE_MODEL, getVariant } from '../models/index.js';
import { describeStage } from '../report.js';
import { EXPERIMENT_FLAG_USAGE, graphsUsage, parseFlags } from './flags.js';
import { progressReporter } from './progress.js';
import { fail, stopOnSignals } from './signals.js';
import { percent } from '../core/format.js';

export { DEFAULT_DATA } from './flags.js';

const USAGE = `usage: npm run graph -- <graph> [flags]
${EXPERIMENT_FLAG_USAGE}
  --resume DIR        continue the run in DIR from its last checkpoint (its own options; only --backend/--quiet may be given)
  --out DIR           run folder (default runs/<graph>-<time>)   --quiet`;

export interface Command {
  graph: string;
  backend: BackendChoice;
  quiet: boolean;
  options: Partial<ExperimentOptions> & Pick<ExperimentOptions, 'data' | 'out'>;
}

/** `--resume DIR`: the graph and options saved in DIR's checkpoint. */
async function resumeCommand(dir: string, backend: BackendChoice, quiet: boolean): Promise<Command> {
  const state = await loadCheckpointState<CheckpointState>(join(dir, CHECKPOINT_DIR));
  if (state === null) throw new Error(`nothing to resume in ${dir}: it has no ${CHECKPOINT_DIR}/latest.json (a run checkpoints after each finished epoch)`);
  return { graph: getGraph(state.graph).name, backend, quiet, options: { ...state.options, out: dir, resume: true } };
}

export async function parseCommandLine(argv: string[]): Promise<Command | 'help'> {
  const parsed = parseFlags(argv, { resume: { type: 'string' } });
  if (parsed.help) return 'help';
  const { backend, quiet, out, options } = parsed.flags;
  const resume = parsed.extra['resume'];
  if (typeof resume === 'string') {
    const extra = parsed.given.filter((flag) => !['resume', 'backend', 'quiet'].includes(flag));
    if (extra.length > 0 || parsed.positionals.length > 0) throw new Error(`--resume continues a run with its own graph and options; drop ${[...parsed.positionals, ...extra.map((f) => `--${f}`)].join(', ')}`);
    return resumeCommand(resume, backend, quiet);
  }
  if (parsed.positionals.length !== 1) throw new Error(`name one graph: ${listGraphs().map((g) => g.name).join(', ')}`);
  const definition = getGraph(parsed.positionals[0]!);
  const graph = definition.name;
  if (options.members && definition.model !== ENSEMBLE_MODEL) throw new Error(`--members is for the ensemble graph, not ${graph}`);
  options.members?.forEach((name) => getVariant(name)); // a mistyped member fails here, listing the known models
  const time = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  return { graph, backend, quiet, options: { ...options, out: out ?? `runs/${graph}-${time}` } };
}

async function main(argv: string[]): Promise<number> {
  const command = await parseCommandLine(argv);
  if (command === 'help') {
    console.log(`${USAGE}\n${graphsUsage()}`);
    return 0;
  }
  const { graph, backend, quiet, options } = command;
  const say = (line: string) => quiet || console.error(line);
  Object.assign(options, await resolveDataOptions(options, { progress: !quiet, say })); // dataset names (--data caltech256) → their folders, fetched when missing
  // before the backend starts: a mistyped path should fail at once
  for (const root of [options.data, options.testData]) if (root !== undefined) await assertDatasetFolder(root);
  const active = await useBackend(backend);
  say(`backend: ${active.choice}${active.skipped.map((s) => `\n  skipped ${s.choice}: ${s.reason}`).join('')}`);
  const progress = progressReporter(quiet);
  const signal = stopOnSignals(say, progress.stop);
  const report = await lastValueFrom(
    experiment(getGraph(graph), options, {
      signal,
      onProgress: progress.update,
      onSkip: (s) => say(`skipped ${s.path}: ${s.reason}`),
      onWarning: (line) => say(`warning: ${line}`),
      onEpoch: (h, epochs) => {
        progress.stop();
        say(`epoch ${h.epoch}/${epochs}: loss ${h.loss.toFixed(3)} top-1 ${percent(h.top1)} | val loss ${h.valLoss.toFixed(3)} val top-1 ${percent(h.valTop1)} | lr ${h.lr.toPrecision(3)} | ${h.seconds.toFixed(1)} s`);
      },
    }),
  ).finally(progress.stop);
  const t = report.training;
  for (const stage of t.stages) say(`stage ${describeStage(stage)}`);
  if (t.stoppedEarly) say(`early stopping: no better validation loss for ${t.patience} epochs; restored epoch ${t.bestEpoch}`);
  const m = report.metrics;
  say(`test${m.tta === 'flip' ? ' (flip TTA)' : ''}: top-1 ${percent(m.top1)}, top-5 ${percent(m.top5)}, mean per-class ${percent(m.meanPerClass)}${m.plain ? ` (plain: top-1 ${percent(m.plain.top1)}, mean per-class ${percent(m.plain.meanPerClass)})` : ''} | full pass ${report.speed.fullPassSeconds.toFixed(1)} s (${report.speed.imagesPerSecond.toFixed(1)} images/s, ${describeEngine(report.speed.engine)})`);
  for (const { provider, reason } of report.speed.engine.skipped ?? []) say(`  skipped ${provider}: ${reason}`);
  console.log(`report: ${options.out}/report.md`);
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then((code) => (process.exitCode = code), fail);
}
