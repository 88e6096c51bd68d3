/**
 * The recipe bench's search: per model, a coordinate search over head settings from the current
 * recipe, each setting trained on K validation splits of the training part and scored by mean
 * per-class validation accuracy averaged over the splits; epochs are read off checkpoints of one
 * run per setting (the schedule is constant, so epoch 15 of a 60-epoch run is a 15-epoch run).
 */
import type { HeadSettings, TrialResult } from './recipe-trial.js';

/** Trains one setting on validation split `split` of `model`'s features for `epochs` epochs. */
export type TrialRunner = (model: string, split: number, settings: HeadSettings, epochs: number) => Promise<TrialResult>;

/** One axis of the search: a setting and the values it takes. */
export interface Axis<K extends keyof HeadSettings = keyof HeadSettings> {
  name: K;
  values: ReadonlyArray<HeadSettings[K]>;
}

export interface SearchPlan {
  /** Where the search starts (and the reference it reports): the current recipe. */
  start: HeadSettings;
  /** The epochs a setting is scored at: checkpoints of one run to the last of them. */
  checkpoints: readonly number[];
  /** The start setting is also scored at these epochs (the recipe as it was: its own epoch count), running on past the checkpoints if need be. */
  reference?: number;
  /** Searched one after another, each around the best setting so far. */
  axes: readonly Axis[];
  /** Validation splits (K). */
  splits: number;
}

/** A setting at an epoch count: its score on each validation split, their mean and standard deviation. */
export interface Row {
  settings: HeadSettings;
  epochs: number;
  perSplit: number[];
  mean: number;
  sd: number;
}

export interface ModelSearch {
  model: string;
  /** Every setting × checkpoint scored, in the order they were run. */
  rows: Row[];
  winner: Row;
  /** The start setting at the reference epochs (the recipe as it was). */
  reference: Row | null;
  /** Trials run and their summed seconds (of whichever thread ran each). */
  trials: number;
  trialSeconds: number;
}

const ORDER: ReadonlyArray<keyof HeadSettings> = ['featureNorm', 'l2', 'lr', 'classWeights', 'labelSmoothing'];
export const settingsKey = (s: HeadSettings) => ORDER.map((k) => `${k}=${s[k]}`).join(',');

export function meanSd(values: readonly number[]): { mean: number; sd: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const sd = values.length > 1 ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (values.length - 1)) : 0;
  return { mean, sd };
}

/** The row with the highest mean score; the earliest on a tie (the search's order: the current recipe first). */
export function best(rows: readonly Row[]): Row {
  if (rows.length === 0) throw new Error('no rows to choose from');
  return rows.reduce((a, b) => (b.mean > a.mean ? b : a));
}

/** One setting run on every split to the last of `checkpoints`; a row per checkpoint. */
async function evaluate(model: string, settings: HeadSettings, plan: SearchPlan, run: TrialRunner, checkpoints: readonly number[] = plan.checkpoints): Promise<{ rows: Row[]; seconds: number }> {
  const last = Math.max(...checkpoints);
  const results = await Promise.all(Array.from({ length: plan.splits }, (_, split) => run(model, split, settings, last)));
  const rows = [...new Set(checkpoints)]
    .sort((a, b) => a - b)
    .map((epochs) => {
      const perSplit = results.map((r) => r.meanPerClass[epochs - 1]!);
      return { settings, epochs, perSplit, ...meanSd(perSplit) };
    });
  return { rows, seconds: results.reduce((s, r) => s + r.seconds, 0) };
}

/**
 * Coordinate search for one model: the start setting, then each axis in turn with every value
 * tried around the best row so far (settings already run are not run again). The winner is the
 * best row of everything run, so it is the argmax of the table.
 */
export async function searchModel(model: string, plan: SearchPlan, run: TrialRunner, onStep?: (step: string, best: Row) => void): Promise<ModelSearch> {
  const done = new Map<string, Row[]>();
  let trials = 0;
  let trialSeconds = 0;
  const tryAll = async (candidates: readonly HeadSettings[], checkpoints = plan.checkpoints) => {
    const fresh = candidates.filter((s, i) => !done.has(settingsKey(s)) && candidates.findIndex((c) => settingsKey(c) === settingsKey(s)) === i);
    const results = await Promise.all(fresh.map((s) => evaluate(model, s, plan, run, checkpoints)));
    fresh.forEach((s, i) => done.set(settingsKey(s), results[i]!.rows));
    trials += fresh.length * plan.splits;
    trialSeconds += results.reduce((n, r) => n + r.seconds, 0);
  };
  const rows = () => [...done.values()].flat();
  await tryAll([plan.start], plan.reference === undefined ? plan.checkpoints : [...plan.checkpoints, plan.reference]);
  onStep?.('start', best(rows()));
  for (const axis of plan.axes) {
    const around = best(rows()).settings;
    await tryAll(axis.values.map((value) => ({ ...around, [axis.name]: value })));
    onStep?.(axis.name, best(rows()));
  }
  const all = rows();
  const reference = plan.reference === undefined ? null : done.get(settingsKey(plan.start))!.find((r) => r.epochs === plan.reference)!;
  return { model, rows: all, winner: best(all), reference, trials, trialSeconds };
}

/**
 * One setting for models the bench cannot search: of the rows every searched model ran (the start
 * setting and the first axis at least, since every search starts from the same setting), the one
 * with the best mean over the models, with its score on each.
 */
export function commonRecipe(searches: readonly ModelSearch[]): { settings: HeadSettings; epochs: number; perModel: Record<string, number>; mean: number } {
  const key = (r: Row) => `${settingsKey(r.settings)};epochs=${r.epochs}`;
  const scored = searches[0]!.rows.flatMap((row) => {
    const matches = searches.map((s) => s.rows.find((o) => key(o) === key(row)));
    if (matches.some((m) => m === undefined)) return [];
    const perModel = Object.fromEntries(searches.map((s, i) => [s.model, matches[i]!.mean]));
    return [{ settings: row.settings, epochs: row.epochs, perModel, mean: meanSd(Object.values(perModel)).mean }];
  });
  return scored.reduce((a, b) => (b.mean > a.mean ? b : a));
}

/** Scores two decimals finer than the project's `percent`: the settings differ by tenths of a point. */
export const points = (fraction: number) => (100 * fraction).toFixed(2);
/** A model's table: its best `top` rows, and the reference row (the hand-chosen recipe) if it is not among them; label smoothing only when some row has it. */
export function formatSearch(search: ModelSearch, top = 8): string {
  const ranked = [...search.rows].sort((a, b) => b.mean - a.mean);
  const shown = ranked.slice(0, top);
  if (search.reference && !shown.includes(search.reference)) shown.push(search.reference);
  const smoothing = search.rows.some((r) => r.settings.labelSmoothing !== 0);
  const columns = ['feature norm', 'L2', 'lr', 'epochs', 'class weights', ...(smoothing ? ['label smoothing'] : [])];
  const header = `| rank | ${columns.join(' | ')} | mean per-class (mean ± sd over splits) | per split |`;
  const lines = shown.map((r) => {
    const marks = [r === search.winner ? 'winner' : '', r === search.reference ? 'hand-chosen recipe' : ''].filter(Boolean).join(', ');
    const s = r.settings;
    const cells = [s.featureNorm, s.l2, s.lr, r.epochs, s.classWeights, ...(smoothing ? [s.labelSmoothing] : [])].map(String);
    return `| ${ranked.indexOf(r) + 1}${marks ? ` (${marks})` : ''} | ${cells.join(' | ')} | ${points(r.mean)} ± ${points(r.sd)} | ${r.perSplit.map(points).join(' / ')} |`;
  });
  return [header, `|${'---|'.repeat(columns.length + 3)}`, ...lines].join('\n');
}
