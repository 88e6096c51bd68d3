import { existsSync } from 'node:fs';
import { readFile, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { denseHead, disposeClassifier, disposeModel, type Classifier } from '../src/models/classifier.js';
import { ScaledResidual } from '../src/models/layers.js';
import { asLayersModel, loadModel, saveModel } from '../src/models/persistence.js';
import { temporaryDir } from './helpers.js';

const SHARED_TFJS = fileURLToPath(new URL('../../shared/weights/tfjs/mobilenet_v2_0.35_224_teachable', import.meta.url));

/** A backbone with one of rxcnn's own layers, so saving must go through the serialisation registry. */
function smallClassifier(): Classifier {
  const input = tfl.input({ shape: [8, 8, 3] });
  const conv = tfl.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) }).apply(input) as tfl.SymbolicTensor;
  const residual = new ScaledResidual({ scale: 0.2 }).apply([input, conv]) as tfl.SymbolicTensor;
  const pooled = tfl.layers.globalAveragePooling2d({}).apply(residual) as tfl.SymbolicTensor;
  const backbone = tfl.model({ inputs: input, outputs: pooled, name: 'small_backbone' });
  backbone.trainable = false;
  return { name: 'small', inputSize: 8, preprocessing: 'unit', classes: 4, backbone, head: denseHead(3, 4, { seed: 2 }), weights: 'random' };
}

describe('saved models (tfjs layers format: model.json + weights.bin)', () => {
  it('round-trip the whole classifier with its custom layers, and the files have the layout tfjs-node reads and writes', async () => {
    const dir = join(await temporaryDir(), 'model');
    const before = tf.memory().numTensors;
    const classifier = smallClassifier();
    const whole = asLayersModel(classifier);
    const bytes = await saveModel(whole, dir, { preprocessing: 'unit', inputSize: 8, classNames: ['a', 'b', 'c', 'd'] });

    const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
    expect(Object.keys(json).sort()).toEqual(['convertedBy', 'format', 'generatedBy', 'modelTopology', 'userDefinedMetadata', 'weightsManifest']);
    expect(json).toMatchObject({ format: 'layers-model', generatedBy: expect.stringMatching(/^TensorFlow\.js tfjs-layers v/), convertedBy: null });
    expect(json.weightsManifest).toHaveLength(1);
    expect(json.weightsManifest[0].paths).toEqual(['weights.bin']);
    // weights.bin is every weight's float32 values back to back, in manifest order
    const weights = await readFile(join(dir, 'weights.bin'));
    const specs = json.weightsManifest[0].weights as Array<{ name: string; shape: number[]; dtype: string }>;
    expect(specs.every((s) => s.dtype === 'float32')).toBe(true);
    const expected = Float32Array.from(whole.getWeights().flatMap((w) => Array.from(w.dataSync())));
    expect(new Float32Array(weights.buffer, weights.byteOffset, weights.byteLength / 4)).toEqual(expected);
    expect(bytes).toBe(weights.byteLength + Buffer.byteLength(JSON.stringify(json)));

    const { model, metadata } = await loadModel(dir);
    expect(metadata).toEqual({ preprocessing: 'unit', inputSize: 8, classNames: ['a', 'b', 'c', 'd'] });
    const x = tf.randomUniform([2, 8, 8, 3], 0, 1, 'float32', 5);
    const [a, b] = [whole.predict(x) as tf.Tensor, model.predict(x) as tf.Tensor];
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    expect(tf.tidy(() => tf.sum(tf.slice(b, [0, 0], [1, 4])).dataSync()[0])).toBeCloseTo(1, 5); // probabilities
    [x, a, b].forEach((t) => t.dispose());
    model.dispose();
    whole.dispose();
    disposeClassifier(classifier);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses a truncated weights file or a folder without a model, in one line', async () => {
    const dir = join(await temporaryDir(), 'model');
    const classifier = smallClassifier();
    const whole = asLayersModel(classifier);
    await saveModel(whole, dir, { preprocessing: 'unit', inputSize: 8 });
    whole.dispose();
    disposeClassifier(classifier);
    await truncate(join(dir, 'weights.bin'), 20);
    await expect(loadModel(dir)).rejects.toThrow(/weights\.bin holds 20 bytes, its manifest describes \d+: the file is truncated or from another model/);
    await expect(loadModel(join(dir, 'missing'))).rejects.toThrow(/^no saved model at .*missing\/model\.json$/);
  });

  it.skipIf(!existsSync(SHARED_TFJS))('loads a tfjs layers model written by other tools (../shared teachable MobileNetV2)', async () => {
    const before = tf.memory().numTensors;
    const { model, metadata } = await loadModel(SHARED_TFJS);
    expect(metadata).toBeNull();
    expect(model.inputs[0]!.shape).toEqual([null, 224, 224, 3]);
    expect(model.countParams()).toBeGreaterThan(400_000);
    disposeModel(model);
    expect(tf.memory().numTensors).toBe(before);
  });
});
