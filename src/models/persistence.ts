import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { writeFileAtomic } from '../core/files.js';
import type { Classifier } from './classifier.js';
import './layers.js'; // registers rxcnn's custom layers, which saved models may contain

const MODEL_JSON = 'model.json';
const WEIGHTS_BIN = 'weights.bin';

/** What a saved model must say about its input, so that whoever loads it can feed it. */
export interface SavedModelMetadata {
  preprocessing: string;
  inputSize: number;
  classNames?: string[];
}

/**
 * An IOHandler for the tfjs layers format on disk: `model.json` + one `weights.bin`, byte for byte
 * the layout tfjs-node's `file://` handler writes and reads, but usable on any backend.
 */
export function fileSystem(dir: string): tf.io.IOHandler {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) throw new Error('binary model topologies are not supported');
      const weights = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData ?? new ArrayBuffer(0)));
      const json: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology!,
        format: artifacts.format!,
        generatedBy: artifacts.generatedBy!,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs ?? [] }],
        ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
        ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
      };
      await mkdir(dir, { recursive: true });
      // weights first: a model.json on disk always describes weights that are complete
      await writeFileAtomic(join(dir, WEIGHTS_BIN), weights);
      await writeFileAtomic(join(dir, MODEL_JSON), JSON.stringify(json));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
    async load(): Promise<tf.io.ModelArtifacts> {
      const path = join(dir, MODEL_JSON);
      const json = JSON.parse(await readFile(path, 'utf8').catch(() => Promise.reject(new Error(`no saved model at ${path}`)))) as tf.io.ModelJSON;
      if (!json.modelTopology || !Array.isArray(json.weightsManifest)) throw new Error(`${path} is not a tfjs layers model (no modelTopology or weightsManifest)`);
      return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
        const specs = manifest.flatMap((group) => group.weights);
        const buffers = await Promise.all(manifest.flatMap((group) => group.paths.map((p) => readFile(join(dir, p)))));
        const data = tf.io.CompositeArrayBuffer.join(buffers.map((b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer));
        const expected = specs.reduce((sum, s) => sum + s.shape.reduce((a, b) => a * b, 1) * bytesPer(s.dtype), 0);
        if (data.byteLength !== expected) throw new Error(`${join(dir, WEIGHTS_BIN)} holds ${data.byteLength} bytes, its manifest describes ${expected}: the file is truncated or from another model`);
        return [specs, data];
      });
    },
  };
}

const bytesPer = (dtype: string) => (dtype === 'bool' || dtype === 'uint8' ? 1 : dtype === 'float16' ? 2 : 4);

/**
 * The classifier as one model from pixels (preprocessed) to class probabilities. It shares the
 * classifier's layers: dispose it first, then the classifier (`disposeClassifier` frees what is left).
 */
export function asLayersModel(classifier: Classifier): tfl.LayersModel {
  const { backbone, head } = classifier;
  const first = backbone ?? head;
  const input = tfl.input({ shape: first.inputs[0]!.shape.slice(1) as number[], name: 'image' });
  const features = backbone ? (backbone.apply(input) as tfl.SymbolicTensor) : input;
  const logits = head.apply(features) as tfl.SymbolicTensor;
  const probabilities = tfl.layers.activation({ activation: 'softmax', name: 'probabilities' }).apply(logits) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: probabilities, name: classifier.name });
}

/**
 * Saves a model in the tfjs layers format into `dir`, replacing what was there only once the new
 * copy is complete, with `extraFiles` beside it. Returns the tfjs model's size on disk in bytes.
 */
export async function saveModel(model: tfl.LayersModel, dir: string, metadata: SavedModelMetadata, extraFiles: Readonly<Record<string, Uint8Array>> = {}): Promise<number> {
  const staging = join(dirname(dir), `.${basename(dir)}.${process.pid}.tmp`);
  await rm(staging, { recursive: true, force: true });
  model.setUserDefinedMetadata({ rxcnn: { ...metadata } });
  await model.save(fileSystem(staging), { includeOptimizer: false });
  // other formats of the same model (model.onnx) go in before the folder is switched, so it is whole or absent
  for (const [file, bytes] of Object.entries(extraFiles)) await writeFile(join(staging, file), bytes);
  await rm(dir, { recursive: true, force: true });
  await rename(staging, dir);
  return modelBytes(dir);
}

/** A saved model and what it says about its input; free it with `disposeModel`. */
export async function loadModel(dir: string): Promise<{ model: tfl.LayersModel; metadata: SavedModelMetadata | null }> {
  const model = await tfl.loadLayersModel(fileSystem(dir));
  const json = JSON.parse(await readFile(join(dir, MODEL_JSON), 'utf8')) as tf.io.ModelJSON;
  const metadata = (json.userDefinedMetadata?.['rxcnn'] as SavedModelMetadata | undefined) ?? null;
  return { model, metadata };
}

export async function modelBytes(dir: string): Promise<number> {
  const sizes = await Promise.all([MODEL_JSON, WEIGHTS_BIN].map((f) => stat(join(dir, f)).then((s) => s.size)));
  return sizes.reduce((a, b) => a + b, 0);
}
