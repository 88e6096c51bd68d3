import { spawn } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { randomFor } from '../src/core/random.js';
import { FeatureCache } from '../src/features/cache.js';
import type { CheckpointState } from '../src/graphs/experiment.js';
import { loadModel } from '../src/models/persistence.js';
import type { Report } from '../src/report.js';
import { loadCheckpoint } from '../src/training/checkpoint.js';
import { temporaryDir } from './helpers.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Child {
  /** Resolves with the exit code (or the signal that killed it) and what it printed. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  kill(signal: NodeJS.Signals): void;
  /** Resolves once stderr has printed a line matching `pattern`. */
  printed(pattern: RegExp): Promise<void>;
}

/** `npm run graph -- …` as a child process with its own feature/weights cache. */
function graph(cache: string, args: string[]): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/graph.ts', ...args], { cwd: ROOT, env: { ...process.env, CI: 'true', RXCNN_CACHE: cache } });
  let stderr = '';
  const waiting: Array<{ pattern: RegExp; resolve: () => void }> = [];
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    for (const w of waiting.splice(0)) (w.pattern.test(stderr) ? w.resolve() : waiting.push(w));
  });
  child.stdout.resume();
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
  return {
    done,
    kill: (signal) => child.kill(signal),
    printed: (pattern) =>
      new Promise((resolve, reject) => {
        if (pattern.test(stderr)) return resolve();
        waiting.push({ pattern, resolve });
        void done.then(() => reject(new Error(`exited before printing ${pattern}: ${stderr}`)));
      }),
  };
}

const RUN = ['mobilenetv2', '--limit', '60', '--image-size', '64', '--lr', '0.01', '--class-weights', 'balanced', '--quiet'];
const outcome = (r: Report) => ({ metrics: r.metrics, history: r.history.map(({ seconds: _, ...rest }) => rest) });

describe('interruptions', () => {
  it('SIGINT and SIGTERM checkpoint the finished epochs, write a partial report and exit 130 / 143', async () => {
    const dir = await temporaryDir();
    const cache = join(dir, 'cache');
    for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
      const out = join(dir, signal);
      const child = graph(cache, [...RUN, '--epochs', '400', '--out', out]);
      // --quiet silences progress; wait for the first checkpoint instead
      await waitFor(() => stat(join(out, 'checkpoint/latest.json')).then(() => true, () => false));
      child.kill(signal);
      const result = await child.done;
      expect(result.code, result.stderr).toBe(code);
      expect(result.stderr).toMatch(new RegExp(`rxcnn: interrupted \\(${signal}\\) after \\d+ finished epoch`));
      expect(result.stderr).toContain(`resume with: npm run graph -- --resume "${out}"`);
      const partial = JSON.parse(await readFile(join(out, 'partial-report.json'), 'utf8'));
      expect(partial).toMatchObject({ status: 'interrupted', reason: signal, epochsPlanned: 400 });
      expect(partial.epochsDone).toBeGreaterThanOrEqual(1);
      expect(partial.history).toHaveLength(partial.epochsDone);
      const checkpoint = (await loadCheckpoint<CheckpointState>(join(out, 'checkpoint')))!;
      expect(checkpoint.state.run.epoch).toBe(partial.epochsDone);
      disposeCheckpoint(checkpoint.tensors);
    }
  });

  it('one Ctrl-C in a terminal (SIGINT to the whole process group of `npm run graph`, relayed by npm and the launcher) stops gracefully', async () => {
    const dir = await temporaryDir();
    const out = join(dir, 'terminal');
    // as a terminal runs it: npm → sh → node (launcher) → node, all in one process group of their own
    const child = spawn('npm', ['run', '--silent', 'graph', '--', ...RUN, '--epochs', '400', '--out', out], { cwd: ROOT, detached: true, env: { ...process.env, CI: 'true', RXCNN_CACHE: join(dir, 'cache') } });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.resume();
    const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    await waitFor(() => stat(join(out, 'checkpoint/latest.json')).then(() => true, () => false));
    process.kill(-child.pid!, 'SIGINT');
    await done;
    expect(stderr).toMatch(/rxcnn: interrupted \(SIGINT\) after \d+ finished epoch/);
    const partial = JSON.parse(await readFile(join(out, 'partial-report.json'), 'utf8'));
    expect(partial).toMatchObject({ status: 'interrupted', reason: 'SIGINT' });
  });

  it('killed (SIGKILL) at random moments, it never leaves a torn file, and resuming ends where an uninterrupted run ends', async () => {
    const dir = await temporaryDir();
    const args = [...RUN, '--epochs', '40', '--no-augment'];
    const whole = join(dir, 'whole');
    const started = Date.now();
    const reference = await graph(join(dir, 'cache-whole'), [...args, '--out', whole]).done;
    expect(reference.code, reference.stderr).toBe(0);
    // kill moments spread over a whole run: start-up, feature extraction, epochs, the final pass, the writes
    const duration = Date.now() - started;

    const out = join(dir, 'killed');
    const cache = join(dir, 'cache-killed');
    const random = randomFor(11, 'kill');
    let kills = 0;
    const start = async () => {
      const resume = await stat(join(out, 'checkpoint/latest.json')).then(() => true, () => false);
      return graph(cache, resume ? ['--resume', out] : [...args, '--out', out]);
    };
    for (let attempt = 0; attempt < 5; attempt++) {
      const child = await start();
      const delay = (0.3 + 0.7 * random()) * duration;
      const timer = setTimeout(() => child.kill('SIGKILL'), delay);
      const result = await child.done;
      clearTimeout(timer);
      if (result.signal === 'SIGKILL') kills++;
      else expect(result.code, result.stderr).toBe(0);
      await expectNothingTorn(out, cache);
      if (result.code === 0) break;
    }
    expect(kills).toBeGreaterThanOrEqual(2);
    let finished = JSON.parse(await readFile(join(out, 'report.json'), 'utf8').catch(() => 'null')) as Report | null;
    if (!finished) {
      const last = await (await start()).done;
      expect(last.code, last.stderr).toBe(0);
      finished = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as Report;
    }
    const expected = JSON.parse(await readFile(join(whole, 'report.json'), 'utf8')) as Report;
    expect(outcome(finished)).toEqual(outcome(expected));
  }, 180_000);
});

/** Every file a run writes is either absent or complete and loadable. */
async function expectNothingTorn(out: string, cache: string): Promise<void> {
  for (const file of ['report.json', 'manifest.json', 'partial-report.json', 'checkpoint/latest.json']) {
    const text = await readFile(join(out, file), 'utf8').catch(() => null);
    if (text !== null) expect(() => JSON.parse(text), file).not.toThrow();
  }
  const checkpoint = await loadCheckpoint<CheckpointState>(join(out, 'checkpoint'));
  if (checkpoint) disposeCheckpoint(checkpoint.tensors);
  if (await stat(join(out, 'model/model.json')).then(() => true, () => false)) (await loadModel(join(out, 'model'))).model.dispose();
  const features = join(cache, 'features');
  for (const dir of await readdir(features).catch(() => [])) {
    const store = new FeatureCache(join(features, dir));
    const entries = (await readdir(join(features, dir))).filter((f) => f.endsWith('.f32'));
    for (const entry of entries) expect(await store.get(entry.replace(/\.f32$/, ''), 1280), entry).not.toBeNull();
    expect(store.corrupt).toBe(0);
  }
}

function disposeCheckpoint(t: { weights: tf.Tensor[]; optimizer: Array<{ tensor: tf.Tensor }>; best: tf.Tensor[] | null }): void {
  [...t.weights, ...t.optimizer.map((s) => s.tensor), ...(t.best ?? [])].forEach((x) => x.dispose());
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}
