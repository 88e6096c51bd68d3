import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { lastValueFrom } from 'rxjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { localRunner, TrialPool, type TrialSetup } from '../bench/recipe-pool.js';
import { best, commonRecipe, formatSearch, searchModel, settingsKey, type Row, type SearchPlan } from '../bench/recipe-search.js';
import { validationSplits, type HeadSettings } from '../bench/recipe-trial.js';
import { main, recipeFeatures, START, trainingPart } from '../bench/recipes.js';
import type { Sample } from '../src/core/types.js';
import { FeatureCache } from '../src/features/cache.js';
import { experiment, getGraph, HEAD_RECIPES } from '../src/graphs/index.js';
import { cacheDir } from '../src/models/weights.js';
import { FIXTURE_ROOT, temporaryDir } from './helpers.js';

const MODEL = 'mobilenetv2_050';
const cacheRoot = () => join(cacheDir(), 'features');
let part: { train: Sample[]; test: Sample[]; classes: number };
let setup: TrialSetup;

beforeAll(async () => {
  part = await trainingPart(FIXTURE_ROOT);
  const { setup: features } = await recipeFeatures([MODEL], part.train, part.classes, { engine: 'auto', cacheRoot: cacheRoot() });
  setup = { ...features, backend: 'wasm', splits: 2, fraction: 0.2 };
});

describe('recipe bench', () => {
  it('reads only the training part of the usual split: no test image is decoded or cached, and every validation split is carved from training images', async () => {
    expect(part.test.length).toBeGreaterThan(0);
    const trainPaths = new Set(part.train.map((s) => s.path));
    expect(new Set(Object.values(setup.tables)[0]!.paths)).toEqual(trainPaths);
    // the feature cache holds an entry for every image whose features were computed: the training images', no test image's
    const [dir] = await readdir(cacheRoot());
    const cached = new Set((await readdir(join(cacheRoot(), dir!))).map((f) => f.replace(/\.f32$/, '')));
    const trainKeys = new Set(await Promise.all(part.train.map((s) => FeatureCache.contentKey(s.path))));
    const testKeys = await Promise.all(part.test.map((s) => FeatureCache.contentKey(s.path)));
    expect(cached).toEqual(trainKeys);
    expect(testKeys.filter((k) => cached.has(k))).toEqual([]);

    const splits = validationSplits(part.train, 3, 0.2);
    for (const { fit, validation } of splits) {
      expect([...fit, ...validation].map((s) => s.path).sort()).toEqual([...trainPaths].sort());
      expect(fit.filter((s) => validation.includes(s))).toEqual([]);
      for (let label = 0; label < part.classes; label++) {
        const n = part.train.filter((s) => s.label === label).length;
        expect(validation.filter((s) => s.label === label).length).toBe(Math.round(0.2 * n));
      }
    }
    expect(splits[1]!.validation).not.toEqual(splits[0]!.validation);
  });

  it('scores a setting the same way every time for a seed, and another split differently', async () => {
    const run = localRunner(setup);
    const first = await run(MODEL, 0, START, 3);
    const again = await run(MODEL, 0, START, 3);
    const other = await run(MODEL, 1, START, 3);
    expect(first.meanPerClass).toHaveLength(3);
    expect(again.meanPerClass).toEqual(first.meanPerClass);
    expect(again.valLoss).toEqual(first.valLoss);
    expect(other.valLoss).not.toEqual(first.valLoss);
  });

  it('a trial on a worker thread scores what it scores on this thread', async () => {
    const pool = await TrialPool.open(setup, 1);
    try {
      const settings: HeadSettings = { ...START, featureNorm: 5, classWeights: 'none' };
      expect(await pool.run(MODEL, 1, settings, 2)).toMatchObject({ meanPerClass: (await localRunner(setup)(MODEL, 1, settings, 2)).meanPerClass });
    } finally {
      await pool.close();
    }
  });

  it('a trial is the graph run with --val-split and that seed: the same validation loss every epoch', async () => {
    const settings: HeadSettings = { featureNorm: 5, l2: 1e-3, lr: 3e-3, classWeights: 'balanced', labelSmoothing: 0.1 };
    const trial = await localRunner(setup)(MODEL, 0, settings, 2);
    const report = await lastValueFrom(
      experiment(getGraph(MODEL), { data: FIXTURE_ROOT, out: join(await temporaryDir(), 'run'), seed: 0, valSplit: setup.fraction, epochs: 2, ...settings }, {}, { cacheRoot: cacheRoot() }),
    );
    expect(report.history.map((h) => h.valLoss)).toEqual(trial.valLoss);
  });

  it('searches axis by axis around the best row so far, and the winner is the argmax of the table', async () => {
    const plan: SearchPlan = { start: START, checkpoints: [1, 2], reference: 3, axes: [{ name: 'featureNorm', values: [0, 10] }, { name: 'lr', values: [1e-3, 3e-3] }], splits: 2 };
    const steps: string[] = [];
    const search = await searchModel(MODEL, plan, localRunner(setup), (step) => steps.push(step));
    expect(steps).toEqual(['start', 'featureNorm', 'lr']);
    // the start (featureNorm 10, lr 1e-3) at epochs 1, 2 and the reference's 3; featureNorm 0; then lr 3e-3 around the better norm
    expect(search.rows.map((r) => r.epochs)).toEqual([1, 2, 3, 1, 2, 1, 2]);
    expect(search.trials).toBe(6);
    const afterNorm = best(search.rows.slice(0, 5)).settings.featureNorm;
    expect(search.rows.slice(5).every((r) => r.settings.featureNorm === afterNorm && r.settings.lr === 3e-3)).toBe(true);
    expect(search.winner.mean).toBe(Math.max(...search.rows.map((r) => r.mean)));
    expect(search.reference).toMatchObject({ settings: START, epochs: 3 });
    for (const row of search.rows) expect(row.mean).toBeCloseTo(row.perSplit.reduce((a, b) => a + b, 0) / row.perSplit.length, 12);
    const table = formatSearch(search).split('\n');
    expect(table[2]).toMatch(/^\| 1 \(winner/);
  });

  it('chooses the common setting among the rows every model ran, by its mean over the models', async () => {
    // a second model on the same features, searched over another axis: the two share only the start setting's rows
    const twin: TrialSetup = { ...setup, models: [...setup.models, { ...setup.models[0]!, name: 'mobilenetv2_035' }] };
    const run = localRunner(twin);
    const plan = (axis: SearchPlan['axes'][number]): SearchPlan => ({ start: START, checkpoints: [1, 2], axes: [axis], splits: 2 });
    const searches = [await searchModel(MODEL, plan({ name: 'lr', values: [3e-3] }), run), await searchModel('mobilenetv2_035', plan({ name: 'featureNorm', values: [0] }), run)];
    const common = commonRecipe(searches);
    const atStart = (search: (typeof searches)[number]) => search.rows.filter((r) => settingsKey(r.settings) === settingsKey(START));
    const means = atStart(searches[0]!).map((r, i) => (r.mean + atStart(searches[1]!)[i]!.mean) / 2);
    expect(common.settings).toEqual(START);
    expect(common.mean).toBeCloseTo(Math.max(...means), 12);
    expect(common.perModel).toEqual({ [MODEL]: atStart(searches[0]!)[means.indexOf(Math.max(...means))]!.mean, mobilenetv2_035: atStart(searches[1]!)[means.indexOf(Math.max(...means))]!.mean });
  });

  it('breaks a tie for the best score in favour of the earlier row', () => {
    const row = (mean: number, lr: number): Row => ({ settings: { ...START, lr }, epochs: 1, perSplit: [mean], mean, sd: 0 });
    const rows = [row(0.5, 1), row(0.9, 2), row(0.9, 3), row(0.1, 4)];
    expect(best(rows)).toBe(rows[1]);
  });

  it("takes the features of the decoder it is told to: sharp's pixels give other features, cached apart", async () => {
    const { setup: sharp } = await recipeFeatures([MODEL], part.train, part.classes, { engine: 'auto', cacheRoot: cacheRoot(), decoder: 'sharp' });
    const [ours, theirs] = [Object.values(setup.tables)[0]!, Object.values(sharp.tables)[0]!];
    expect(theirs.paths).toEqual(ours.paths);
    expect(theirs.values).not.toEqual(ours.values);
    expect(await readdir(cacheRoot())).toHaveLength(2);
  });

  it('--current scores each model\'s recipe as its graph runs it, with no search', async () => {
    const out = join(await temporaryDir(), 'current.json');
    await main(['--current', '--data', FIXTURE_ROOT, '--models', MODEL, '--splits', '2', '--workers', '0', '--out', out]);
    const written = JSON.parse(await readFile(out, 'utf8'));
    const { epochs, featureNorm, l2, lr, classWeights } = HEAD_RECIPES.mobilenetv2_050;
    const [search] = written.searches;
    expect(search.rows).toHaveLength(1);
    expect(search.rows[0]).toMatchObject({ settings: { featureNorm, l2, lr, classWeights, labelSmoothing: 0 }, epochs });
    expect(search.rows[0].perSplit).toHaveLength(2);
    expect(written.data.decoder).toBe('auto');
  });

  it('refuses flags it cannot use, with one line', async () => {
    await expect(main(['--decoder', 'pil'])).rejects.toThrow("unknown decoder 'pil'; valid: auto, fast, sharp");
    await expect(main(['--splits', 'two'])).rejects.toThrow("--splits takes a whole number, got 'two'");
    await expect(main(['--fraction', '1.5'])).rejects.toThrow('--fraction takes a number between 0 and 1');
    await expect(main(['--data', join(await temporaryDir(), 'none')])).rejects.toThrow(/Caltech-101 not found at/);
  });
});

describe('per-architecture head recipes', () => {
  it("each graph defaults to its model's recipe (the recipe of its kind where the bench could not search it)", () => {
    const defaults = (graph: string) => getGraph(graph).experiment.defaults;
    expect(defaults('mobilenetv2')).toMatchObject(HEAD_RECIPES.mobilenetv2_050);
    expect(defaults('mobilenetv2_050')).toMatchObject(HEAD_RECIPES.mobilenetv2_050);
    expect(defaults('mobilenetv2_035')).toMatchObject(HEAD_RECIPES.mobilenetv2_035);
    expect(defaults('mobilenetv1')).toMatchObject(HEAD_RECIPES.mobilenetv1_025);
    expect(defaults('squeezenet')).toMatchObject(HEAD_RECIPES.squeezenet);
    expect(defaults('inceptionresnetv2')).toMatchObject(HEAD_RECIPES.frozenBackbone);
    expect(defaults('efficientnetb3')).toMatchObject(HEAD_RECIPES.frozenBackbone);
    // the two-stage graph keeps the head its validation curve started from (README, Two-stage fine-tuning)
    expect(defaults('mobilenetv2-finetune')).toMatchObject({ epochs: 30, lr: 1e-3, l2: 1e-4, featureNorm: 10, classWeights: 'balanced', fineTune: 1, fineTuneEpochs: 4, fineTuneLr: 1e-4 });
    expect(defaults('ensemble')).toMatchObject(HEAD_RECIPES.ensemble);
  });

  it('flags override the recipe, the rest of it stays', async () => {
    const given = { featureNorm: 0, epochs: 1 } as const;
    const report = await lastValueFrom(experiment(getGraph('squeezenet'), { data: FIXTURE_ROOT, out: join(await temporaryDir(), 'run'), limit: 20, imageSize: 40, weights: 'none', ...given }));
    const { lr, l2, classWeights } = HEAD_RECIPES.squeezenet;
    expect(report.options).toMatchObject({ ...given, lr, l2, classWeights });
    expect(report.history).toHaveLength(1);
  });
});
