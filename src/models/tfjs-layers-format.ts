import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tfc from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { assignWeights, type AssignOptions, type AssignResult, type StoredLayers } from './load-weights.js';

interface ModelJson {
  weightsManifest: Array<{ paths: string[]; weights: tfc.io.WeightsManifestEntry[] }>;
}

/** The weights of a TensorFlow.js layers model folder (model.json + binary shards), layer by layer. */
export async function readTfjsLayersWeights(dir: string): Promise<StoredLayers> {
  const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8').catch(() => {
    throw new Error(`no model.json in ${dir}`);
  })) as ModelJson;
  if (!Array.isArray(json.weightsManifest)) throw new Error(`${join(dir, 'model.json')}: no weightsManifest`);
  // Trainable weights come first in a manifest and moving statistics later, so gather by layer.
  const byLayer = new Map<string, StoredLayers[number]>();
  for (const group of json.weightsManifest) {
    const shards = await Promise.all(group.paths.map((p) => readFile(join(dir, p))));
    const buffer = new Uint8Array(shards.reduce((n, s) => n + s.length, 0));
    let offset = 0;
    for (const shard of shards) {
      buffer.set(shard, offset);
      offset += shard.length;
    }
    const tensors = tfc.io.decodeWeights(buffer.buffer, group.weights);
    for (const spec of group.weights) {
      const slash = spec.name.lastIndexOf('/');
      const layer = slash < 0 ? spec.name : spec.name.slice(0, slash);
      const tensor = tensors[spec.name]!;
      const stored = { name: spec.name, shape: spec.shape, values: Float32Array.from(tensor.dataSync()) };
      tensor.dispose();
      const entry = byLayer.get(layer) ?? { layer, tensors: [] };
      entry.tensors.push(stored);
      byLayer.set(layer, entry);
    }
  }
  return [...byLayer.values()];
}

/** Loads a tfjs layers model folder's weights into `model` by layer name. */
export async function loadTfjsLayersWeights(model: LayersModel, dir: string, options: AssignOptions = {}): Promise<AssignResult> {
  return assignWeights(model, await readTfjsLayersWeights(dir), join(dir, 'model.json'), options);
}
