import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { BACKEND_CHOICES, useBackend, type BackendChoice } from '../backend.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { lastValueFrom } from 'rxjs';
import { BASE_OPTIONS, experiment, getGraph, listGraphs, type ExperimentOptions, type Progress } from '../graphs/index.js';
import { CHECKPOINT_DIR, RunInterrupted, type CheckpointState } from '../graphs/experiment.js';
import { LR_SCHEDULES, type LrSchedule } from '../training/schedule.js';

export const DEFAULT_DATA = fileURLToPath(new URL('../../fixtures/caltech101-mini', import.meta.url));

const FLAGS = {
  data: { type: 'string' },
  'test-data': { type: 'string' },
  protocol: { type: 'string' },
  exclude: { type: 'string', multiple: true },
  epochs: { type: 'string' },
  batch: { type: 'string' },
  'image-size': { type: 'string' },
  lr: { type: 'string' },
  seed: { type: 'string' },
  backend: { type: 'string' },
  limit: { type: 'string' },
  out: { type: 'string' },
  weights: { type: 'string' },
  alpha: { type: 'string' },
  resize: { type: 'string' },
  'no-augment': { type: 'boolean' },
  'no-cache': { type: 'boolean' },
  'fine-tune': { type: 'string' },
  'class-weights': { type: 'string' },
  views: { type: 'string' },
  l2: { type: 'string' },
  'lr-schedule': { type: 'string' },
  warmup: { type: 'string' },
  patience: { type: 'string' },
  'val-split': { type: 'string' },
  resume: { type: 'string' },
  prefetch: { type: 'string' },
  concurrency: { type: 'string' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const USAGE = `usage: npm run graph -- <graph> [flags]
  --data DIR          folder-per-class dataset (default: the embedded fixtures/caltech101-mini)
  --test-data DIR     external test folder; all of --data then trains
  --protocol P        ratio:F | per-class:N[:M]   (default ${BASE_OPTIONS.protocol})
  --exclude NAME      leave a class out; repeatable or comma-separated (default ${BASE_OPTIONS.exclude.join(',')})
  --epochs N          --batch N (default ${BASE_OPTIONS.batch})   --lr X   --seed N (default ${BASE_OPTIONS.seed})
  --image-size N      input side in pixels (default: the model's)
  --backend B         ${BACKEND_CHOICES.join('|')} (default auto)
  --limit N           use at most N images, balanced over classes
  --weights W         imagenet | none | path to a weights file   --alpha A (MobileNets)
  --resize MODE       squash | center-crop (default ${BASE_OPTIONS.resize})   --no-augment
  --no-cache          recompute a frozen backbone's features every epoch (then augmentation applies)
  --fine-tune N       also train the backbone's last N blocks (no feature cache)
  --views N           cached feature views: 1, or 2 (the image and its mirror)
  --class-weights W   none | balanced (every class weighs the same in the loss)   --l2 X  penalty on head kernels
  --lr-schedule S     ${LR_SCHEDULES.join(' | ')} (default ${BASE_OPTIONS.lrSchedule})   --warmup N  epochs of linear warm-up
  --patience N        stop when the validation loss has not improved for N epochs; restore the best epoch
  --val-split F       hold out F of each class's training images for validation (default 0, or 0.1 with --patience)
  --resume DIR        continue the run in DIR from its last checkpoint (its own options; only --backend/--quiet may be given)
  --prefetch N        batches decoded ahead (default ${BASE_OPTIONS.prefetch})   --concurrency N images decoded at once (default ${BASE_OPTIONS.concurrency})
  --out DIR           run folder (default runs/<graph>-<time>)   --quiet`;

function number(flag: string, text: string | undefined, check: (n: number) => boolean = (n) => n > 0): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value) || !check(value)) throw new Error(`--${flag} expects a ${check === isCount ? 'positive whole number' : 'number'}, got '${text}'`);
  return value;
}
const isCount = (n: number) => Number.isInteger(n) && n > 0;

/** The CLI's flags as experiment options; unknown flags or values fail with one line. */
export interface Command {
  graph: string;
  backend: BackendChoice;
  quiet: boolean;
  options: Partial<ExperimentOptions> & Pick<ExperimentOptions, 'data' | 'out'>;
}

/** `--resume DIR`: the graph and options saved in DIR's checkpoint. */
async function resumeCommand(dir: string, backend: BackendChoice, quiet: boolean): Promise<Command> {
  const root = join(dir, CHECKPOINT_DIR);
  const pointer = await readFile(join(root, 'latest.json'), 'utf8').catch(() => null);
  if (pointer === null) throw new Error(`nothing to resume in ${dir}: it has no ${CHECKPOINT_DIR}/latest.json (a run checkpoints after each finished epoch)`);
  const state = JSON.parse(await readFile(join(root, (JSON.parse(pointer) as { checkpoint: string }).checkpoint, 'state.json'), 'utf8')) as { state: CheckpointState };
  const { graph, options } = state.state;
  return { graph: getGraph(graph).name, backend, quiet, options: { ...options, out: dir, resume: true } };
}

export async function parseCommandLine(argv: string[]): Promise<Command | 'help'> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: FLAGS, allowPositionals: true, strict: true });
  } catch (error) {
    const flag = /'([^']+)'/.exec((error as Error).message)?.[1] ?? String(error);
    throw new Error(`unknown or malformed flag ${flag}; valid flags: ${Object.keys(FLAGS).map((f) => `--${f}`).join(', ')}`);
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  const backend = (values.backend ?? 'auto') as BackendChoice;
  if (!BACKEND_CHOICES.includes(backend)) throw new Error(`unknown backend '${backend}'; valid: ${BACKEND_CHOICES.join(', ')}`);
  if (values.resume !== undefined) {
    const extra = Object.keys(values).filter((flag) => !['resume', 'backend', 'quiet'].includes(flag));
    if (extra.length > 0 || positionals.length > 0) throw new Error(`--resume continues a run with its own graph and options; drop ${[...positionals, ...extra.map((f) => `--${f}`)].join(', ')}`);
    return resumeCommand(values.resume, backend, values.quiet ?? false);
  }
  const names = listGraphs().map((g) => g.name).join(', ');
  if (positionals.length !== 1) throw new Error(`name one graph: ${names}`);
  const graph = getGraph(positionals[0]!).name;
  if (values.resize && values.resize !== 'squash' && values.resize !== 'center-crop') throw new Error(`unknown resize mode '${values.resize}'; valid: squash, center-crop`);
  const time = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const options: Partial<ExperimentOptions> & Pick<ExperimentOptions, 'data' | 'out'> = {
    data: values.data ?? DEFAULT_DATA,
    out: values.out ?? `runs/${graph}-${time}`,
  };
  const set = <K extends keyof ExperimentOptions>(key: K, value: ExperimentOptions[K] | undefined) => {
    if (value !== undefined) options[key] = value;
  };
  set('testData', values['test-data']);
  set('protocol', values.protocol);
  set('exclude', values.exclude?.flatMap((e) => e.split(',')).filter(Boolean));
  set('epochs', number('epochs', values.epochs, isCount));
  set('batch', number('batch', values.batch, isCount));
  set('imageSize', number('image-size', values['image-size'], isCount));
  set('lr', number('lr', values.lr));
  set('seed', number('seed', values.seed, Number.isInteger));
  set('limit', number('limit', values.limit, isCount));
  set('weights', values.weights);
  set('alpha', number('alpha', values.alpha));
  set('resize', values.resize as ExperimentOptions['resize'] | undefined);
  if (values['no-augment']) options.augment = false;
  if (values['no-cache']) options.cache = false;
  set('fineTune', number('fine-tune', values['fine-tune'], isCount));
  const classWeights = values['class-weights'];
  if (classWeights !== undefined && classWeights !== 'none' && classWeights !== 'balanced') throw new Error(`unknown class weights '${classWeights}'; valid: none, balanced`);
  set('classWeights', classWeights);
  set('l2', number('l2', values.l2, (n) => n >= 0));
  set('views', number('views', values.views, (n) => n === 1 || n === 2) as 1 | 2 | undefined);
  const schedule = values['lr-schedule'];
  if (schedule !== undefined && !(LR_SCHEDULES as readonly string[]).includes(schedule)) throw new Error(`unknown learning-rate schedule '${schedule}'; valid: ${LR_SCHEDULES.join(', ')}`);
  set('lrSchedule', schedule as LrSchedule | undefined);
  set('warmup', number('warmup', values.warmup, (n) => Number.isInteger(n) && n >= 0));
  set('patience', number('patience', values.patience, isCount));
  set('valSplit', number('val-split', values['val-split'], (n) => n >= 0 && n < 1));
  set('prefetch', number('prefetch', values.prefetch, isCount));
  set('concurrency', number('concurrency', values.concurrency, isCount));
  return { graph, backend, quiet: values.quiet ?? false, options };
}

function progressReporter(quiet: boolean) {
  if (quiet || !process.stderr.isTTY) return { update: (_: Progress) => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: '{phase} {epoch} [{bar}] {value}/{total} images | {duration_formatted}', hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let key = '';
  return {
    update(p: Progress) {
      const current = `${p.phase}/${p.epoch}`;
      if (current !== key) {
        if (key) bar.stop();
        key = current;
        bar.start(p.total, 0, { phase: p.phase, epoch: p.phase === 'full pass' || p.phase === 'features' ? '' : `epoch ${p.epoch}` });
      }
      bar.update(p.done);
    },
    stop: () => bar.stop(),
  };
}

/** Exit codes of a run stopped by a signal, as shells report them (128 + signal number). */
const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

async function main(argv: string[]): Promise<number> {
  const command = await parseCommandLine(argv);
  if (command === 'help') {
    console.log(`${USAGE}\ngraphs: ${listGraphs().map((g) => g.name).join(', ')}`);
    return 0;
  }
  const { graph, backend, quiet, options } = command;
  const say = (line: string) => quiet || console.error(line);
  const active = await useBackend(backend);
  say(`backend: ${active.choice}${active.skipped.map((s) => `\n  skipped ${s.choice}: ${s.reason}`).join('')}`);
  const progress = progressReporter(quiet);
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  // The first signal stops the run cleanly (checkpoint and partial report); a second one exits at once.
  const stop = new AbortController();
  for (const signal of Object.keys(SIGNAL_EXIT)) {
    process.on(signal, () => {
      if (stop.signal.aborted) process.exit(SIGNAL_EXIT[signal]);
      progress.stop();
      say(`${signal}: stopping; the last finished epoch is checkpointed (again to exit at once)`);
      stop.abort(signal);
    });
  }
  const report = await lastValueFrom(
    experiment(getGraph(graph), options, {
      signal: stop.signal,
      onProgress: progress.update,
      onSkip: (s) => say(`skipped ${s.path}: ${s.reason}`),
      onWarning: (line) => say(`warning: ${line}`),
      onEpoch: (h, epochs) => {
        progress.stop();
        say(`epoch ${h.epoch}/${epochs}: loss ${h.loss.toFixed(3)} top-1 ${pct(h.top1)} | val loss ${h.valLoss.toFixed(3)} val top-1 ${pct(h.valTop1)} | lr ${h.lr.toPrecision(3)} | ${h.seconds.toFixed(1)} s`);
      },
    }),
  ).finally(progress.stop);
  const t = report.training;
  if (t.stoppedEarly) say(`early stopping: no better validation loss for ${t.patience} epochs; restored epoch ${t.bestEpoch}`);
  const m = report.metrics;
  say(`test: top-1 ${pct(m.top1)}, top-5 ${pct(m.top5)}, mean per-class ${pct(m.meanPerClass)} | full pass ${report.speed.fullPassSeconds.toFixed(1)} s (${report.speed.imagesPerSecond.toFixed(1)} images/s)`);
  console.log(`report: ${options.out}/report.md`);
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (error: unknown) => {
      console.error(`rxcnn: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
      if (error instanceof RunInterrupted) {
        console.error(`resume with: npm run graph -- --resume ${JSON.stringify(error.partialReport.replace(/\/partial-report\.json$/, ''))}`);
        // work abandoned mid-flight (a feature pass, a decode) must not keep the process alive
        process.exit(SIGNAL_EXIT[error.reason] ?? 1);
      }
      process.exitCode = 1;
    },
  );
}
