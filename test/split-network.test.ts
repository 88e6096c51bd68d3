import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { SymbolicTensor } from '@tensorflow/tfjs-layers';
import { lastValueFrom, of, toArray } from 'rxjs';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { relativeDifference } from '../src/core/difference.js';
import { cutActivations } from '../src/core/forward.js';
import { normalize } from '../src/core/normalize.js';
import type { ImageBatch } from '../src/core/types.js';
import { openEngine, type EngineChoice } from '../src/engines/index.js';
import { disposeClassifier, disposeModel, type Classifier } from '../src/models/classifier.js';
import { createModel } from '../src/models/index.js';
import { splitBackbone, UnsplittableError } from '../src/models/split.js';
import { predict } from '../src/operators/predict.js';
import { train } from '../src/operators/train.js';
import { SplitNetwork } from '../src/stages/split.js';
import { fixtureImages } from './helpers.js';

const SIZE = 96;
/** What the ONNX export is held to against tfjs (max |a − r| / max |r|). */
const TOLERANCE = 1e-4;

async function photos(n: number): Promise<ImageBatch> {
  const files = (await Promise.all(['accordion', 'Leopards', 'watch'].map(fixtureImages))).flatMap((f) => f.slice(0, Math.ceil(n / 3))).slice(0, n);
  const pixels = await Promise.all(files.map((f) => sharp(f).removeAlpha().resize(SIZE, SIZE, { fit: 'fill' }).raw().toBuffer()));
  return { x: new Uint8Array(Buffer.concat(pixels)), shape: [n, SIZE, SIZE, 3], y: Int32Array.from({ length: n }, (_, i) => i % 3), paths: files };
}

const split = (model: Classifier, engine: EngineChoice) => new SplitNetwork(model, (cut) => openEngine(model.backbone!, { preprocessing: model.preprocessing, workers: 0, engine, upTo: cut }));
const snapshot = (model: tfl.LayersModel) => new Map(model.weights.map((w) => [w, w.read().dataSync().slice() as Float32Array]));

describe('a fine-tuned backbone split at its cut (the frozen prefix on an engine, the top on tfjs)', () => {
  // 2 blocks of MobileNetV2: block 16 and Conv_1; blocks 15 and 16 do not share a residual, so the cut is block 15's output
  it.for(['onnxruntime', 'tfjs'] as const)('gives the whole tfjs network\'s features and probabilities (within 1e-4) before training, on %s', async (engine) => {
    const tensors = tf.memory().numTensors;
    const model = await createModel('mobilenetv2', { classes: 3, inputSize: SIZE, fineTune: 2, seed: 1 });
    const network = split(model, engine);
    try {
      expect(network.cut).toBe('block_15_add');
      const batch = await photos(6);
      const [activations] = await lastValueFrom(of(batch).pipe(network.activations(), toArray()));
      expect(activations!.shape).toEqual([6, 3 * 3 * 80]);
      const features = (x: () => tf.Tensor) => tf.tidy(() => x().dataSync() as Float32Array);
      const whole = features(() => model.backbone!.predict(normalize(batch, model.preprocessing)) as tf.Tensor);
      const cut = features(() => network.network.backbone!.predict(cutActivations(network.network, activations!)) as tf.Tensor);
      const { relative, scale } = relativeDifference(whole, cut);
      expect(scale).toBeGreaterThan(0);
      expect(relative).toBeLessThan(TOLERANCE);
      const [wholeProbs] = await lastValueFrom(of(batch).pipe(predict(model), toArray()));
      const [splitProbs] = await lastValueFrom(of(batch).pipe(network.activations(), predict(network.network), toArray()));
      expect(relativeDifference(wholeProbs!.probs, splitProbs!.probs).relative).toBeLessThan(TOLERANCE);
      expect(network.prefixEngine?.name).toBe(engine === 'tfjs' ? 'tfjs' : 'onnxruntime');
    } finally {
      await network.close();
      disposeClassifier(model);
    }
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('trains only the unfrozen layers (and the head) through the split', async () => {
    const tensors = tf.memory().numTensors;
    const model = await createModel('mobilenetv2', { classes: 3, inputSize: SIZE, fineTune: 2, seed: 1 });
    const network = split(model, 'onnxruntime');
    const optimizer = tf.train.adam(1e-3);
    try {
      const backbone = snapshot(model.backbone!);
      const head = snapshot(model.head);
      const batch = await photos(6);
      await lastValueFrom(of(batch, batch).pipe(network.activations(), train(network.network, optimizer), toArray()));
      const trainable = new Set(model.backbone!.trainableWeights);
      expect(trainable.size).toBeGreaterThan(0);
      let changed = 0;
      for (const [weight, before] of backbone) {
        const moved = relativeDifference(before, weight.read().dataSync()).relative > 0;
        // a frozen layer's weights, and the moving statistics of unfrozen batch-norms (kept in inference mode), stay as they were
        expect(moved, weight.name).toBe(trainable.has(weight));
        if (moved) changed++;
      }
      expect(changed).toBe(trainable.size);
      for (const [weight, before] of head) expect(relativeDifference(before, weight.read().dataSync()).relative, weight.name).toBeGreaterThan(0);
      // the layers before the cut are the frozen prefix, those after it the trained top
      const cutIndex = model.backbone!.layers.findIndex((l) => l.name === network.cut);
      expect(model.backbone!.layers.slice(0, cutIndex + 1).every((l) => l.trainableWeights.length === 0)).toBe(true);
    } finally {
      optimizer.dispose();
      await network.close();
      disposeClassifier(model);
    }
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('refuses a cut that two tensors cross (a residual over it) or with nothing frozen below it', () => {
    const input = tfl.input({ shape: [8, 8, 3] });
    const a = tfl.layers.conv2d({ filters: 4, kernelSize: 1, name: 'a' }).apply(input) as SymbolicTensor;
    const b = tfl.layers.conv2d({ filters: 4, kernelSize: 1, name: 'b' }).apply(a) as SymbolicTensor;
    const c = tfl.layers.conv2d({ filters: 4, kernelSize: 1, name: 'c' }).apply(b) as SymbolicTensor;
    const sum = tfl.layers.add({ name: 'sum' }).apply([a, c]) as SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: sum });
    try {
      for (const layer of model.layers) layer.trainable = layer.name === 'c' || layer.name === 'sum';
      expect(() => splitBackbone(model)).toThrow(UnsplittableError);
      expect(() => splitBackbone(model)).toThrow(/2 tensors cross there \(a, b\)/);
      for (const layer of model.layers) layer.trainable = layer.name !== 'a';
      expect(splitBackbone(model).cut).toBe('a');
      for (const layer of model.layers) layer.trainable = true;
      expect(() => splitBackbone(model)).toThrow(/there is no frozen prefix/);
    } finally {
      disposeModel(model);
    }
  });
});
