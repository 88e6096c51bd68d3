import { join } from 'node:path';
import { lastValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { RunInterrupted, type CheckpointState } from '../src/graphs/experiment.js';
import { loadCheckpointState } from '../src/training/checkpoint.js';
import { experiment, getGraph } from '../src/graphs/index.js';
import type { Report } from '../src/report.js';
import { FIXTURE_ROOT, temporaryDir } from './helpers.js';

const graph = () => getGraph('mobilenetv2-finetune');
const OPTIONS = { data: FIXTURE_ROOT, limit: 20, imageSize: 32, epochs: 2, fineTune: 1, fineTuneEpochs: 2, fineTuneLr: 1e-3 };
const outcome = (r: Report) => ({ metrics: r.metrics, history: r.history.map(({ seconds: _, ...rest }) => rest) });

/** Runs the two-stage graph into `out`, aborting it once epoch `stopAfter` is checkpointed; then resumes it to the end. */
async function interruptedAt(out: string, stopAfter: number): Promise<Report> {
  const stop = new AbortController();
  const first = lastValueFrom(experiment(graph(), { ...OPTIONS, out }, { signal: stop.signal, onEpoch: (r) => r.epoch === stopAfter && stop.abort('SIGINT') }));
  await expect(first).rejects.toBeInstanceOf(RunInterrupted);
  return lastValueFrom(experiment(graph(), { ...OPTIONS, out, resume: true }));
}

describe('a two-stage recipe (head on cached features, then fine-tuning the top blocks)', () => {
  it('runs end to end and resumes exactly after an interruption in either stage', async () => {
    const dir = await temporaryDir();
    const whole = await lastValueFrom(experiment(graph(), { ...OPTIONS, out: join(dir, 'whole') }));
    expect(whole.training.stages).toMatchObject([
      { name: 'head', epochs: 2, lr: 1e-3, input: 'features', epochsRun: 2 },
      // the last block (Conv_1) trains on tfjs from block 16's output, computed on ONNX Runtime
      { name: 'fine-tune', epochs: 2, lr: 1e-3, input: 'images', epochsRun: 2, frozenPrefix: { cut: 'block_16_project_BN', engine: expect.stringMatching(/^onnxruntime \(cpu/) } },
    ]);
    expect(whole.training.stages[0]).not.toHaveProperty('frozenPrefix');
    // a stage's seconds are its epochs'
    whole.training.stages.forEach((stage, i) => expect(stage.seconds).toBeCloseTo(whole.history.slice(2 * i, 2 * i + 2).reduce((t, h) => t + h.seconds, 0), 6));
    expect(whole.history.map((h) => h.epoch)).toEqual([1, 2, 3, 4]);
    expect(whole.features).toMatchObject({ cached: true, misses: 20, fineTunedBlocks: 1 });
    // the head's epochs train on cached features; the fine-tuning epochs decode their images anew
    expect(whole.operators['embed']!.items).toBe(20);
    expect(whole.operators['augment']!.items).toBe(2 * 10);
    // every fine-tuning epoch's images, trained and evaluated, go through the frozen prefix
    expect(whole.operators['prefix']!.items).toBe(2 * (10 + whole.training.validationImages));
    expect(whole.training.epochsPlanned).toBe(4);
    // the worker count is saved as the user left it (auto), to be decided again wherever the run resumes
    const saved = await loadCheckpointState<CheckpointState>(join(dir, 'whole', 'checkpoint'));
    expect(saved!.options.workers).toBe('auto');
    expect(saved!.run.stage).toBe(1);

    for (const stopAfter of [1, 3]) {
      const resumed = await interruptedAt(join(dir, `stopped-${stopAfter}`), stopAfter);
      expect(resumed.training.resumedAfterEpoch, `stopped after ${stopAfter}`).toBe(stopAfter);
      expect(outcome(resumed), `stopped after ${stopAfter}`).toEqual(outcome(whole));
    }
  }, 240_000);
});
