import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { createOnnxEngine } from '../src/engines/onnxruntime.js';
import { disposeClassifier } from '../src/models/classifier.js';
import { createModel } from '../src/models/index.js';
import { asLayersModel, saveModel } from '../src/models/persistence.js';
import { normalize } from '../src/core/normalize.js';
import { temporaryDir } from './helpers.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);

async function exportCli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/cli/export.ts', ...args], { cwd: ROOT });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('npm run export', () => {
  it("exports a run folder's trained classifier as uint8 pixels → probabilities, equal to the saved model's", async () => {
    const dir = await temporaryDir();
    const classifier = await createModel('mobilenetv2', { classes: 3, inputSize: 64, seed: 3 });
    const wrapper = asLayersModel(classifier);
    try {
      await saveModel(wrapper, join(dir, 'model'), { preprocessing: classifier.preprocessing, inputSize: 64, classNames: ['a', 'b', 'c'] });
      const out = join(dir, 'classifier.onnx');
      const result = await exportCli(dir, '--out', out);
      expect(result.stderr).toBe('');
      expect(result.stdout).toMatch(/'pixels' uint8 \[batch, 64, 64, 3\] \(RGB, preprocessing symmetric inside\) → 'probabilities' float32 \[batch, 3\]/);
      const pixels = Uint8Array.from({ length: 2 * 64 * 64 * 3 }, (_, i) => (i * 37) % 256);
      const batch = { x: pixels, shape: [2, 64, 64, 3] as [number, number, number, number], y: new Int32Array(2), paths: [] };
      const engine = await createOnnxEngine(out);
      try {
        const ours = await engine.run(batch);
        const expected = tf.tidy(() => (wrapper.predict(normalize(batch, 'symmetric')) as tf.Tensor).dataSync());
        const diff = Math.max(...expected.map((v, i) => Math.abs(v - ours.values[i]!)));
        expect(diff / Math.max(...expected.map(Math.abs))).toBeLessThan(1e-4);
        expect(ours.values.slice(0, 3).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      } finally {
        await engine.dispose();
      }
    } finally {
      disposeClassifier(classifier);
    }
  });

  it('exports a model name as its ImageNet backbone (embedded MobileNetV2-0.5), and refuses unknown names in one line', async () => {
    const dir = await temporaryDir();
    const ok = await exportCli('mobilenetv2', '--image-size', '96', '--out', join(dir, 'features.onnx'));
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/mobilenetv2_050 backbone, weights imagenet .* → 'features' float32 \[batch, 1280\]/);
    const bad = await exportCli('nosuchnet', '--out', join(dir, 'x.onnx'));
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim()).toMatch(/^export: 'nosuchnet' is neither a folder nor a model; models: .*mobilenetv2/);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
  });
});
