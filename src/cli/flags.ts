import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BACKEND_CHOICES, type BackendChoice } from '../backend.js';
import { ENGINE_CHOICES, ONNX_PROVIDER_CHOICES, type EngineChoice, type OnnxProviderChoice } from '../engines/index.js';
import { BASE_OPTIONS, listGraphs, type ExperimentOptions } from '../graphs/index.js';
import { DECODERS, parseDecoder } from '../decode/pixels.js';
import { LR_SCHEDULES, type LrSchedule } from '../training/schedule.js';
import { TTA_CHOICES, type Tta } from '../stages/full-pass.js';

export const DEFAULT_DATA = fileURLToPath(new URL('../../fixtures/caltech101-mini', import.meta.url));

/** The flags every experiment command takes (`npm run graph`, `npm run compare`). */
export const EXPERIMENT_FLAGS = {
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
  'weights-dir': { type: 'string' },
  alpha: { type: 'string' },
  resize: { type: 'string' },
  'no-augment': { type: 'boolean' },
  'no-cache': { type: 'boolean' },
  'fine-tune': { type: 'string' },
  'fine-tune-epochs': { type: 'string' },
  'fine-tune-lr': { type: 'string' },
  'fine-tune-patience': { type: 'string' },
  engine: { type: 'string' },
  provider: { type: 'string' },
  'class-weights': { type: 'string' },
  views: { type: 'string' },
  l2: { type: 'string' },
  'feature-norm': { type: 'string' },
  'label-smoothing': { type: 'string' },
  'lr-schedule': { type: 'string' },
  warmup: { type: 'string' },
  patience: { type: 'string' },
  'val-split': { type: 'string' },
  prefetch: { type: 'string' },
  concurrency: { type: 'string' },
  decoder: { type: 'string' },
  workers: { type: 'string' },
  tta: { type: 'string' },
  members: { type: 'string' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Usage lines of {@link EXPERIMENT_FLAGS}, except `--out`, whose default each command states. */
export const EXPERIMENT_FLAG_USAGE = `  --data DIR|NAME     folder-per-class dataset, or caltech256 / caltech101 (fetched into $RXCNN_CACHE/datasets once;
                      an existing folder of that name wins) (default: the embedded fixtures/caltech101-mini)
  --test-data DIR|NAME external test folder or dataset name; all of --data then trains
  --protocol P        ratio:F | per-class:N[:M]   (default ${BASE_OPTIONS.protocol})
  --exclude NAME      leave a class out; repeatable or comma-separated (default ${BASE_OPTIONS.exclude.join(',')})
  --epochs N          --batch N (default ${BASE_OPTIONS.batch})   --lr X   --seed N (default ${BASE_OPTIONS.seed})
                      (epochs, lr, l2, feature norm, class weights: each graph's recipe, listed below, unless given)
  --image-size N      input side in pixels (default: the model's)
  --backend B         ${BACKEND_CHOICES.join('|')} (default auto)
  --limit N           use at most N images, balanced over classes
  --weights W         imagenet | none | path to a weights file   --alpha A (MobileNets)
  --weights-dir DIR   folder searched first for each model's ImageNet file (its published name, e.g. Keras downloads)
  --resize MODE       squash | center-crop (default ${BASE_OPTIONS.resize})   --no-augment
  --no-cache          recompute a frozen backbone's features every epoch (then augmentation applies)
  --fine-tune N       also train the backbone's last N blocks (no feature cache)
  --fine-tune-epochs N  with --fine-tune: a second stage of N epochs (the head first on cached features, then the blocks with it)
  --fine-tune-lr X    the second stage's learning rate (default: --lr / 10)
  --fine-tune-patience N  the second stage's early stopping (default: --patience; mobilenetv2-finetune: 2)
  --views N           cached feature views: 1, or 2 (the image and its mirror; the test figures stay of the plain images)
  --class-weights W   none | balanced (every class weighs the same in the loss)   --l2 X  penalty on head kernels
  --feature-norm X    scale backbone features to L2 length X in the head; 0: raw features   --label-smoothing E  in [0, 1) (default 0)
  --lr-schedule S     ${LR_SCHEDULES.join(' | ')} (default ${BASE_OPTIONS.lrSchedule})   --warmup N  epochs of linear warm-up
  --patience N        stop when the validation loss has not improved for N epochs; restore the best epoch
  --val-split F       hold out F of each class's training images for validation (default 0, or 0.1 with --patience)
  --prefetch N        batches decoded ahead (default ${BASE_OPTIONS.prefetch})   --concurrency N decoding threads (default: one per core, ${BASE_OPTIONS.concurrency})
  --decoder D         ${DECODERS.join(' | ')}: auto takes 8-bit JPEG/PNG without alpha or a non-sRGB profile through the fast decoder (bilinear, as PIL), the rest through sharp (default ${BASE_OPTIONS.decoder})
  --workers N|auto    worker threads computing inference on wasm (features, full pass); 0: this thread (default auto: cores up to 4, decided where the run runs)
  --engine E          ${ENGINE_CHOICES.join(' | ')}: what computes inference; auto: ONNX Runtime when it loads, else tfjs (default auto)
  --provider P        ${ONNX_PROVIDER_CHOICES.join(' | ')}: ONNX Runtime's execution provider; auto: the fastest that loads (default auto)
  --members A,B,…     the ensemble graph's members: models whose frozen backbones' features, side by side, train one head
                      (each its own weights, preprocessing and feature cache; all at one input size: --image-size, else the largest of theirs)
  --tta T             ${TTA_CHOICES.join(' | ')}: flip averages each test image with its mirror in the final pass (the plain figures are
                      reported too; the speed figure times the plain pass only) (default ${BASE_OPTIONS.tta})`;

type FlagSpec = { type: 'string' | 'boolean'; multiple?: boolean; short?: string };
type FlagValue = string | boolean | string[] | undefined;

export interface ExperimentFlags {
  backend: BackendChoice;
  quiet: boolean;
  /** `--out` as given (each command has its own default). */
  out: string | undefined;
  options: Partial<ExperimentOptions> & Pick<ExperimentOptions, 'data'>;
}

export interface ParsedFlags {
  help: boolean;
  positionals: string[];
  /** The flags given, by name (without their values). */
  given: string[];
  flags: ExperimentFlags;
  /** Values of the command's own flags (`extra`), by name. */
  extra: Record<string, FlagValue>;
}

const isCount = (n: number) => Number.isInteger(n) && n > 0;
const isWhole = (n: number) => Number.isInteger(n) && n >= 0;
const expected = (check: (n: number) => boolean) => (check === isCount ? 'positive whole number' : check === isWhole ? 'whole number ≥ 0' : 'number');

function number(flag: string, text: string | undefined, check: (n: number) => boolean = (n) => n > 0): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value) || !check(value)) throw new Error(`--${flag} expects a ${expected(check)}, got '${text}'`);
  return value;
}

/**
 * Parses {@link EXPERIMENT_FLAGS} plus a command's own `extra` flags; an unknown flag or a bad value
 * fails with one line. Positionals are returned as given, for the command to check.
 */
export function parseFlags(argv: string[], extra: Record<string, FlagSpec> = {}): ParsedFlags {
  const all = { ...EXPERIMENT_FLAGS, ...extra };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: all, allowPositionals: true, strict: true });
  } catch (error) {
    const flag = /'([^']+)'/.exec((error as Error).message)?.[1] ?? String(error);
    throw new Error(`unknown or malformed flag ${flag}; valid flags: ${Object.keys(all).map((f) => `--${f}`).join(', ')}`);
  }
  const values = parsed.values as Record<string, FlagValue>;
  const extraValues = Object.fromEntries(Object.keys(extra).map((name) => [name, values[name]]));
  if (values['help'] === true) return { help: true, positionals: parsed.positionals, given: Object.keys(values), flags: { backend: 'auto', quiet: false, out: undefined, options: { data: DEFAULT_DATA } }, extra: extraValues };
  const text = (name: keyof typeof EXPERIMENT_FLAGS) => values[name] as string | undefined;
  const backend = (text('backend') ?? 'auto') as BackendChoice;
  if (!BACKEND_CHOICES.includes(backend)) throw new Error(`unknown backend '${backend}'; valid: ${BACKEND_CHOICES.join(', ')}`);
  const resize = text('resize');
  if (resize && resize !== 'squash' && resize !== 'center-crop') throw new Error(`unknown resize mode '${resize}'; valid: squash, center-crop`);
  const options: ExperimentFlags['options'] = { data: text('data') ?? DEFAULT_DATA };
  const set = <K extends keyof ExperimentOptions>(key: K, value: ExperimentOptions[K] | undefined) => {
    if (value !== undefined) options[key] = value;
  };
  set('testData', text('test-data'));
  set('protocol', text('protocol'));
  set('exclude', (values['exclude'] as string[] | undefined)?.flatMap((e) => e.split(',')).filter(Boolean));
  set('epochs', number('epochs', text('epochs'), isCount));
  set('batch', number('batch', text('batch'), isCount));
  set('imageSize', number('image-size', text('image-size'), isCount));
  set('lr', number('lr', text('lr')));
  set('seed', number('seed', text('seed'), Number.isInteger));
  set('limit', number('limit', text('limit'), isCount));
  set('weights', text('weights'));
  set('weightsDir', text('weights-dir') && resolve(text('weights-dir')!));
  set('alpha', number('alpha', text('alpha')));
  set('resize', resize as ExperimentOptions['resize'] | undefined);
  if (values['no-augment']) options.augment = false;
  if (values['no-cache']) options.cache = false;
  set('fineTune', number('fine-tune', text('fine-tune'), isCount));
  set('fineTuneEpochs', number('fine-tune-epochs', text('fine-tune-epochs'), isCount));
  set('fineTuneLr', number('fine-tune-lr', text('fine-tune-lr')));
  set('fineTunePatience', number('fine-tune-patience', text('fine-tune-patience'), isCount));
  const engine = text('engine');
  if (engine !== undefined && !(ENGINE_CHOICES as readonly string[]).includes(engine)) throw new Error(`unknown engine '${engine}'; valid: ${ENGINE_CHOICES.join(', ')}`);
  set('engine', engine as EngineChoice | undefined);
  const provider = text('provider');
  if (provider !== undefined && !(ONNX_PROVIDER_CHOICES as readonly string[]).includes(provider)) throw new Error(`unknown ONNX Runtime provider '${provider}'; valid: ${ONNX_PROVIDER_CHOICES.join(', ')}`);
  set('provider', provider as OnnxProviderChoice | undefined);
  const classWeights = text('class-weights');
  if (classWeights !== undefined && classWeights !== 'none' && classWeights !== 'balanced') throw new Error(`unknown class weights '${classWeights}'; valid: none, balanced`);
  set('classWeights', classWeights);
  set('l2', number('l2', text('l2'), (n) => n >= 0));
  set('featureNorm', number('feature-norm', text('feature-norm'), (n) => n >= 0));
  set('labelSmoothing', number('label-smoothing', text('label-smoothing'), (n) => n >= 0 && n < 1));
  set('views', number('views', text('views'), (n) => n === 1 || n === 2) as 1 | 2 | undefined);
  const schedule = text('lr-schedule');
  if (schedule !== undefined && !(LR_SCHEDULES as readonly string[]).includes(schedule)) throw new Error(`unknown learning-rate schedule '${schedule}'; valid: ${LR_SCHEDULES.join(', ')}`);
  set('lrSchedule', schedule as LrSchedule | undefined);
  set('warmup', number('warmup', text('warmup'), isWhole));
  set('patience', number('patience', text('patience'), isCount));
  set('valSplit', number('val-split', text('val-split'), (n) => n >= 0 && n < 1));
  set('prefetch', number('prefetch', text('prefetch'), isCount));
  set('concurrency', number('concurrency', text('concurrency'), isCount));
  const decoder = text('decoder');
  set('decoder', decoder === undefined ? undefined : parseDecoder(decoder));
  set('workers', text('workers') === 'auto' ? 'auto' : number('workers', text('workers'), isWhole));
  const tta = text('tta');
  if (tta !== undefined && !(TTA_CHOICES as readonly string[]).includes(tta)) throw new Error(`unknown test-time augmentation '${tta}'; valid: ${TTA_CHOICES.join(', ')}`);
  set('tta', tta as Tta | undefined);
  set('members', text('members')?.split(',').map((m) => m.trim()).filter(Boolean));
  return {
    help: false,
    positionals: parsed.positionals,
    given: Object.keys(values),
    flags: { backend, quiet: values['quiet'] === true, out: text('out'), options },
    extra: extraValues,
  };
}

const flagName = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/**
 * `options` as the flags that set them, leaving out what {@link BASE_OPTIONS} already has: a graph's
 * recipe written as the command line that runs it (`--epochs 20 --lr 0.001 …`), for `--help`.
 */
export function recipeFlags(options: Partial<ExperimentOptions>): string {
  const base: Partial<Record<string, unknown>> = BASE_OPTIONS;
  return Object.entries(options)
    .filter(([key, value]) => JSON.stringify(value) !== JSON.stringify(base[key]))
    .map(([key, value]) => {
      if (typeof value === 'boolean') {
        if (value) throw new Error(`recipeFlags: no flag turns ${key} on`);
        return `--no-${flagName(key)}`;
      }
      return `--${flagName(key)} ${Array.isArray(value) ? value.join(',') : String(value)}`;
    })
    .join(' ');
}

/** `--help`'s list of graphs: one line each, its name and its recipe as flags. */
export function graphsUsage(): string {
  const graphs = listGraphs();
  const width = Math.max(...graphs.map((g) => g.name.length));
  return `\ngraphs, each with the recipe it runs unless flags say otherwise:\n${graphs.map((g) => `  ${g.name.padEnd(width)}  ${recipeFlags(g.experiment.defaults)}`).join('\n')}`;
}
