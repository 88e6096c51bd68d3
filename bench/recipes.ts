/**
 * `npm run bench -- recipes`: chooses each model's head recipe on held-out training images. On
 * Caltech-101 from ../shared (101 classes, BACKGROUND_Google excluded), the training part of the
 * usual split (`--protocol ratio:0.8 --seed 0`, prepared by the graphs' own `prepareData`) is all it
 * reads: the test part is never decoded. Each model's frozen-backbone features of the training part
 * come once through the feature cache (ONNX Runtime computes what is missing); then, per model, a
 * coordinate search over head settings (feature norm, learning rate, L2, class weights; epochs
 * read off checkpoints) from the hand-chosen recipe, each setting trained by the
 * graph's own stage on K class-stratified validation splits (20% of each class, seeds 0…K−1) and
 * scored by mean per-class validation accuracy averaged over the splits. Prints a table per model
 * and the winners, and the one setting best over all the searched single models (for the
 * architectures without offline weights); writes bench/results/recipes-<date>.json.
 *
 *   npm run bench -- recipes                       the four models with offline weights
 *   npm run bench -- recipes --models squeezenet,ensemble --workers 1
 *   npm run bench -- recipes --current --decoder sharp   each model's current recipe only, on sharp's pixels
 */
import { existsSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { lastValueFrom } from 'rxjs';
import { useBackend, type BackendChoice } from '../src/backend.js';
import type { Sample } from '../src/core/types.js';
import { writeJsonAtomic } from '../src/core/files.js';
import { openEngine, type EngineChoice } from '../src/engines/index.js';
import { parseDecoder, type Decoder } from '../src/decode/pixels.js';
import { BASE_OPTIONS, getGraph } from '../src/graphs/index.js';
import { disposeClassifier, type Classifier } from '../src/models/classifier.js';
import { createModel } from '../src/models/create.js';
import { createEnsemble, ENSEMBLE_MODEL } from '../src/models/ensemble.js';
import { cacheDir } from '../src/models/weights.js';
import { prepareData } from '../src/stages/data.js';
import { FeatureStore } from '../src/stages/features.js';
import { imageFeed } from '../src/stages/feed.js';
import { localRunner, pack, TrialPool, type TrialSetup } from './recipe-pool.js';
import { commonRecipe, formatSearch, points, searchModel, settingsKey, type Axis, type ModelSearch, type SearchPlan } from './recipe-search.js';
import type { FeatureTable, HeadSettings } from './recipe-trial.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SHARED = join(ROOT, '../shared');
export const DATA = join(SHARED, 'data/caltech101/101_ObjectCategories');
/** The offline Keras ImageNet files, found there by their published names. */
export const WEIGHTS_DIR = join(SHARED, 'weights/keras');
export const MODELS = ['mobilenetv2_050', 'mobilenetv2_035', 'squeezenet', 'mobilenetv1_025'];

/**
 * Where the search starts, and the reference its tables show: the head recipe every transfer graph
 * had before this bench, chosen by hand on one validation split (30 epochs). Fixed here, not read
 * from the graphs, so the bench searches the same way after its winners become their defaults.
 */
export const START: HeadSettings = { featureNorm: 10, l2: 1e-4, lr: 1e-3, classWeights: 'balanced', labelSmoothing: 0 };
export const REFERENCE_EPOCHS = 30;

/**
 * The axes, searched in this order (the feature norm first: it sets the logits' scale, which the
 * learning rate and the L2 penalty act on). Learning rate and epochs trade off for Adam on a linear
 * head, so lr {1e-3, 3e-3} × epochs {10, 20, 30} spans 10 to 90 epochs' worth at 1e-3 (3e-4 × 30
 * is about 1e-3 × 10, a checkpoint already). Sized for about 15 minutes on 2 cores: a head epoch on
 * the 4,400 cached feature vectors of a split costs ~1 s of one core for a 1280-wide MobileNetV2,
 * and every setting runs 30 epochs on every split. Left out for that: label smoothing and L2 0
 * (within the noise of one validation split when they were tried by hand; README, Accuracy) and
 * 60-epoch runs.
 */
export const AXES: Axis[] = [
  { name: 'featureNorm', values: [0, 5, 10, 20] },
  { name: 'lr', values: [1e-3, 3e-3] },
  { name: 'l2', values: [1e-4, 1e-3] },
  { name: 'classWeights', values: ['none', 'balanced'] },
];
export const CHECKPOINTS = [10, 20, 30];

export interface RecipeDataOptions {
  weightsDir?: string;
  /** The pixels the features are of (default: the graphs' decoder). */
  decoder?: Decoder;
  engine: EngineChoice;
  cacheRoot: string;
  onLine?: (line: string) => void;
}

/** The training part of the usual split (ratio:0.8, seed 0), exactly as a graph run prepares it. */
export async function trainingPart(data: string): Promise<{ train: Sample[]; test: Sample[]; classes: number }> {
  const prepared = await prepareData({ data, protocol: BASE_OPTIONS.protocol, exclude: BASE_OPTIONS.exclude, seed: BASE_OPTIONS.seed });
  return { train: prepared.split.train, test: prepared.split.test, classes: prepared.split.classes.length };
}

/** A backbone's features of `samples` through the graph's feature cache (the same key a graph run uses), what is missing computed on `engine`. */
async function backboneFeatures(member: Classifier, samples: readonly Sample[], options: RecipeDataOptions): Promise<FeatureTable> {
  const { batch, prefetch, resize, concurrency, workers, provider } = BASE_OPTIONS;
  const decoder = options.decoder ?? BASE_OPTIONS.decoder;
  const store = new FeatureStore(member, {
    root: options.cacheRoot,
    resize,
    decoder,
    views: ['plain'],
    engine: () => openEngine(member.backbone!, { preprocessing: member.preprocessing, workers, engine: options.engine, provider, onNotice: options.onLine }),
    feed: (batchSamples, view, consume) => imageFeed(batchSamples, { bound: prefetch * batch, batch, size: member.inputSize, resize, decoder, concurrency, prepare: view }, consume),
    onWarning: options.onLine,
  });
  const [table] = await lastValueFrom(store.load(samples));
  const missing = samples.length - table!.size;
  if (missing > 0) options.onLine?.(`${member.name}: ${missing} training images have no features (undecodable) and are left out`);
  return table!;
}

/**
 * The features every searched model trains on, packed for the trials: a single model's at its own
 * input size; the ensemble's members' at the ensemble's (one size for all, as its graph runs them).
 */
export async function recipeFeatures(models: readonly string[], train: readonly Sample[], classes: number, options: RecipeDataOptions): Promise<{ setup: Omit<TrialSetup, 'backend' | 'splits' | 'fraction'>; seconds: Record<string, number> }> {
  const tables: TrialSetup['tables'] = {};
  const specs: TrialSetup['models'] = [];
  const seconds: Record<string, number> = {};
  const source = { weightsDir: options.weightsDir, seed: BASE_OPTIONS.seed };
  for (const name of models) {
    const started = performance.now();
    if (name === ENSEMBLE_MODEL) {
      const ensemble = await createEnsemble({ members: getGraph(ENSEMBLE_MODEL).experiment.defaults.members ?? [], classes, ...source });
      try {
        const keys: string[] = [];
        for (const member of ensemble.members) {
          const key = `${member.name}@${member.inputSize}`;
          tables[key] ??= pack(await backboneFeatures(member, train, options));
          keys.push(key);
        }
        specs.push({ name, classes, kind: 'ensemble', tables: keys });
      } finally {
        disposeClassifier(ensemble);
      }
    } else {
      const model = await createModel(name, { classes, ...source });
      try {
        const key = `${model.name}@${model.inputSize}`;
        tables[key] ??= pack(await backboneFeatures(model, train, options));
        specs.push({ name, classes, kind: 'single', tables: [key] });
      } finally {
        disposeClassifier(model);
      }
    }
    seconds[name] = (performance.now() - started) / 1000;
    options.onLine?.(`features of ${name}: ${seconds[name]!.toFixed(0)} s`);
  }
  return { setup: { tables, models: specs, train: [...train] }, seconds };
}

/** The head recipe `model`'s graph runs with no flags, as the bench's settings, and its epochs. */
function currentRecipe(model: string): { settings: HeadSettings; epochs: number } {
  const defaults = getGraph(model).experiment.defaults;
  const { epochs, featureNorm, l2, lr, classWeights, labelSmoothing } = { ...BASE_OPTIONS, ...defaults };
  return { settings: { featureNorm: featureNorm ?? 0, l2, lr, classWeights, labelSmoothing }, epochs };
}

const describe = (s: HeadSettings, epochs: number) => `--feature-norm ${s.featureNorm} --l2 ${s.l2} --lr ${s.lr} --epochs ${epochs} --class-weights ${s.classWeights}${s.labelSmoothing ? ` --label-smoothing ${s.labelSmoothing}` : ''}`;

export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      models: { type: 'string', default: MODELS.join(',') },
      splits: { type: 'string', default: '3' },
      fraction: { type: 'string', default: '0.2' },
      epochs: { type: 'string', default: CHECKPOINTS.join(',') },
      workers: { type: 'string', default: String(availableParallelism()) },
      data: { type: 'string', default: DATA },
      'weights-dir': { type: 'string', default: WEIGHTS_DIR },
      engine: { type: 'string', default: 'onnxruntime' },
      backend: { type: 'string', default: 'wasm' },
      decoder: { type: 'string', default: BASE_OPTIONS.decoder },
      current: { type: 'boolean', default: false },
      out: { type: 'string' },
    },
  });
  const decoder = parseDecoder(values.decoder);
  const count = (flag: string, text: string) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${flag} takes a whole number, got '${text}'`);
    return n;
  };
  const splits = count('splits', values.splits);
  const fraction = Number(values.fraction);
  if (!(fraction > 0 && fraction < 1)) throw new Error(`--fraction takes a number between 0 and 1, got '${values.fraction}'`);
  const checkpoints = values.epochs.split(',').map((e) => count('epochs', e));
  const workers = count('workers', values.workers);
  const models = values.models.split(',');
  if (!existsSync(values.data)) throw new Error(`Caltech-101 not found at ${values.data}; this benchmark needs ../shared/data/caltech101 (or --data DIR)`);

  const started = performance.now();
  const cpuStart = process.cpuUsage();
  const loadBefore = loadavg();
  const backend = await useBackend(values.backend as BackendChoice);
  const log = (line: string) => console.log(line);
  const { train, test, classes } = await trainingPart(values.data);
  log(`${values.data}: ${train.length} training images of ${classes} classes (the ${test.length} test images of the split are not read); ${splits} validation splits of ${fraction * 100}% of each class; features of the ${decoder} decoder's pixels`);
  const features = await recipeFeatures(models, train, classes, { weightsDir: values['weights-dir'], decoder, engine: values.engine as EngineChoice, cacheRoot: join(cacheDir(), 'features'), onLine: log });
  const featureSeconds = (performance.now() - started) / 1000;

  const setup: TrialSetup = { ...features.setup, backend: backend.choice, splits, fraction };
  const poolStarted = performance.now();
  const pool = workers > 0 ? await TrialPool.open(setup, workers) : null;
  const poolSeconds = (performance.now() - poolStarted) / 1000;
  const run = pool?.run ?? localRunner(setup);
  // --current: no search, each model's recipe as its graph runs it (to score it on other pixels, say)
  const planFor = (model: string): SearchPlan => {
    if (!values.current) return { start: START, checkpoints, reference: REFERENCE_EPOCHS, axes: AXES, splits };
    const { settings, epochs } = currentRecipe(model);
    return { start: settings, checkpoints: [epochs], axes: [], splits };
  };
  const searchStarted = performance.now();
  let searches: ModelSearch[];
  let common: ReturnType<typeof commonRecipe> | null = null;
  try {
    searches = await Promise.all(
      models.map((model) => searchModel(model, planFor(model), run, (step, top) => log(`${model}: after ${step}, best ${points(top.mean)} (${describe(top.settings, top.epochs)})`))),
    );
    const singles = searches.filter((s) => s.model !== ENSEMBLE_MODEL);
    if (singles.length > 1 && !values.current) common = commonRecipe(singles);
  } finally {
    await pool?.close();
  }
  const searchSeconds = (performance.now() - searchStarted) / 1000;
  for (const search of searches) log(`\n### ${search.model}: ${search.trials} trials, ${search.trialSeconds.toFixed(0)} s of training\n\n${formatSearch(search)}`);

  console.log(`\n## ${values.current ? "Each model's current recipe, not searched" : 'Winners'} (mean per-class accuracy on validation, mean ± sd over the splits; ${decoder} decoder)\n`);
  console.log('| model | winner | score | the hand-chosen recipe (30 epochs) | gain |');
  console.log('|---|---|---|---|---|');
  for (const s of searches) {
    const ref = s.reference;
    console.log(`| ${s.model} | \`${describe(s.winner.settings, s.winner.epochs)}\` | ${points(s.winner.mean)} ± ${points(s.winner.sd)} | ${ref ? `${points(ref.mean)} ± ${points(ref.sd)}` : 'n/a'} | ${ref ? `${(100 * (s.winner.mean - ref.mean)).toFixed(2)}` : 'n/a'} |`);
  }
  if (common) console.log(`\nbest single setting over ${Object.keys(common.perModel).join(', ')}: \`${describe(common.settings, common.epochs)}\`, mean ${points(common.mean)} (${Object.entries(common.perModel).map(([m, v]) => `${m} ${points(v)}`).join(', ')})`);

  const cpu = process.cpuUsage(cpuStart);
  const seconds = (performance.now() - started) / 1000;
  // another set of models gets a file of its own, so it does not overwrite the default run's
  const named = `${values.current ? 'current-' : ''}${decoder === BASE_OPTIONS.decoder ? '' : `${decoder}-`}${values.models === MODELS.join(',') ? '' : `${models.join('+')}-`}`;
  const out = values.out ?? join(ROOT, 'bench/results', `recipes-${named}${new Date().toISOString().slice(0, 10)}.json`);
  await writeJsonAtomic(out, {
    date: new Date().toISOString(),
    command: `npm run bench -- recipes ${argv.join(' ')}`.trim(),
    node: process.version,
    backend: backend.choice,
    workers,
    loadAverage: { before: loadBefore, after: loadavg() },
    seconds: { total: seconds, features: featureSeconds, featuresPerModel: features.seconds, workersStarting: poolSeconds, search: searchSeconds },
    // every thread of the process (the trial workers, ONNX Runtime's pool): over the cores, what the bench would take on an idle machine at best
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    data: { root: values.data, protocol: BASE_OPTIONS.protocol, seed: BASE_OPTIONS.seed, train: train.length, classes, splits, fraction, decoder },
    plans: Object.fromEntries(models.map((model) => [model, planFor(model)])),
    searches: searches.map((s) => ({ ...s, winnerKey: `${settingsKey(s.winner.settings)};epochs=${s.winner.epochs}` })),
    common,
  });
  console.log(`\n${seconds.toFixed(0)} s wall, ${((cpu.user + cpu.system) / 1e6).toFixed(0)} s of CPU over ${availableParallelism()} cores (features ${featureSeconds.toFixed(0)} s, starting the workers ${poolSeconds.toFixed(0)} s, search ${searchSeconds.toFixed(0)} s on ${workers || 'this'} ${workers ? 'worker threads' : 'thread'}); load average ${loadavg().map((l) => l.toFixed(2)).join(', ')}\nresults: ${out}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
