/**
 * `npm run bench -- two-stage`: the validation curve of the two-stage recipe (`mobilenetv2-finetune`)
 * on Caltech-101 from ../shared (101 classes, BACKGROUND_Google excluded, ratio:0.8, seed 0):
 * blocks unfrozen × fine-tuning learning rate × epochs, every figure on the held-out tenth of the
 * training images (never the test images). The head's stage is the same for every setting, so it
 * runs once — stopped after its last epoch, its checkpoint copied — and each setting resumes from
 * a copy: exactly the run it would be from scratch (resuming is exact, test/two-stage.test.ts). Each
 * setting stops after its last fine-tuning epoch: the curve needs no saved model or test pass.
 *
 *   npm run bench -- two-stage [--blocks 1,2,4] [--lr 0.0001,0.0003] [--epochs 4]
 *
 * Prints the curve and seconds per fine-tuning epoch; writes bench/results/two-stage-<date>.json.
 */
import { cp } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { lastValueFrom } from 'rxjs';
import { useBackend } from '../src/backend.js';
import { writeJsonAtomic } from '../src/core/files.js';
import { percent } from '../src/core/format.js';
import { RunInterrupted } from '../src/graphs/experiment.js';
import { experiment, getGraph } from '../src/graphs/index.js';
import type { ExperimentOptions } from '../src/graphs/graph.js';
import type { EpochRecord } from '../src/report.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SHARED = join(ROOT, '../shared');
const DATA = join(SHARED, 'data/caltech101/101_ObjectCategories');
const WEIGHTS_DIR = join(SHARED, 'weights/keras');
const GRAPH = 'mobilenetv2-finetune';

export interface CurveRow {
  blocks: number;
  lr: number;
  /** Epoch 0 is the head's last epoch (where fine-tuning starts); then each fine-tuning epoch. */
  epochs: Array<{ epoch: number; valTop1: number; valMeanPerClass: number; valLoss: number; seconds: number }>;
  /** Load average (1 min) when the setting finished. */
  load: number;
}

/** Runs `options` until epoch `last` is checkpointed, then stops it (its history so far is `seen`). */
async function runUntil(options: Partial<ExperimentOptions> & Pick<ExperimentOptions, 'data' | 'out'>, last: number, seen: EpochRecord[]): Promise<void> {
  const stop = new AbortController();
  const running = lastValueFrom(experiment(getGraph(GRAPH), options, { signal: stop.signal, onEpoch: (r) => (seen.push(r), r.epoch === last && stop.abort('curve done')) }));
  await running.then(
    () => undefined,
    (error: unknown) => {
      if (!(error instanceof RunInterrupted)) throw error;
    },
  );
}

const point = (h: EpochRecord, first: number) => ({ epoch: h.epoch - first, valTop1: h.valTop1, valMeanPerClass: h.valMeanPerClass ?? NaN, valLoss: h.valLoss, seconds: h.seconds });

export async function benchTwoStage(blocks: readonly number[], rates: readonly number[], epochs: number, onRow: (row: CurveRow) => void = () => {}): Promise<CurveRow[]> {
  if (!existsSync(DATA)) throw new Error(`Caltech-101 not found at ${DATA}; this benchmark needs ../shared/data/caltech101`);
  await useBackend('auto');
  const dir = join(ROOT, 'runs', `two-stage-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}`);
  const base = { data: DATA, exclude: ['BACKGROUND_Google'], protocol: 'ratio:0.8', seed: 0, alpha: 0.5, weightsDir: WEIGHTS_DIR, fineTuneEpochs: epochs, fineTunePatience: epochs };
  const head = (getGraph(GRAPH).experiment.defaults.epochs ?? 0) as number;
  const headRun: EpochRecord[] = [];
  await runUntil({ ...base, fineTune: blocks[0]!, out: join(dir, 'head') }, head, headRun);
  const start = point(headRun.at(-1)!, head);
  const rows: CurveRow[] = [];
  for (const b of blocks) {
    for (const lr of rates) {
      const out = join(dir, `blocks${b}-lr${lr}`);
      await cp(join(dir, 'head'), out, { recursive: true });
      const seen: EpochRecord[] = [];
      await runUntil({ ...base, fineTune: b, fineTuneLr: lr, out, resume: true }, head + epochs, seen);
      const row = { blocks: b, lr, epochs: [start, ...seen.map((h) => point(h, head))], load: loadavg()[0]! };
      rows.push(row);
      onRow(row);
    }
  }
  return rows;
}

export function formatCurve(rows: readonly CurveRow[]): string {
  const epochs = Math.max(...rows.map((r) => r.epochs.length)) - 1;
  const header = `| blocks | lr | ${Array.from({ length: epochs + 1 }, (_, e) => `epoch ${e}`).join(' | ')} | s per epoch |`;
  const lines = rows.map((r) => {
    const tuned = r.epochs.slice(1);
    const seconds = tuned.reduce((s, e) => s + e.seconds, 0) / tuned.length;
    return `| ${r.blocks} | ${r.lr} | ${r.epochs.map((e) => `${percent(e.valMeanPerClass)} (${percent(e.valTop1)})`).join(' | ')} | ${seconds.toFixed(0)} |`;
  });
  return [header, `|---|---|${'---|'.repeat(epochs + 1)}---|`, ...lines].join('\n');
}

export async function main(argv: string[] = []): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { blocks: { type: 'string', default: '1,2,4' }, lr: { type: 'string', default: '0.0001,0.0003' }, epochs: { type: 'string', default: '4' } } });
  const list = (text: string) => text.split(',').map(Number);
  const out = join(ROOT, 'bench/results', `two-stage-${new Date().toISOString().slice(0, 10)}.json`);
  const done: CurveRow[] = [];
  // written after every setting: a long curve stopped part way keeps what it measured
  const save = () => writeJsonAtomic(out, { date: new Date().toISOString(), rows: done });
  let saving = Promise.resolve();
  const rows = await benchTwoStage(list(values.blocks), list(values.lr), Number(values.epochs), (row) => {
    done.push(row);
    saving = saving.then(save);
    console.log(formatCurve([row]).split('\n').pop());
  });
  await saving;
  console.log(`\nvalidation mean per-class (top-1), epoch 0 = the head alone\n${formatCurve(rows)}`);
  console.log(`results: ${out}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main(process.argv.slice(2));
