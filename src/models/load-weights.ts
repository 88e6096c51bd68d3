import * as tfc from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';

/** One tensor as stored in a weights file. */
export interface StoredTensor {
  name: string;
  shape: number[];
  values: Float32Array;
}

/** The weights of a file, layer by layer, in file order. */
export type StoredLayers = Array<{ layer: string; tensors: StoredTensor[] }>;

export interface AssignOptions {
  /** Maps a layer name of the file to the model's (older Keras versions used other names). */
  rename?: (fileLayerName: string) => string;
  /** Layers of the file that the model lacks are ignored (e.g. a classifier top) instead of refused. */
  allowUnused?: boolean;
  /** Layers of the model that may keep their initial weights when the file lacks them (a new top). */
  optional?: readonly string[];
}

export interface AssignResult {
  layers: number;
  tensors: number;
  /** File layers the model does not have (only with `allowUnused`). */
  unused: string[];
}

/** The output channels of a layer's first tensor (a conv kernel's last dimension), if the file has the layer. */
export function outputChannels(stored: StoredLayers, layer: string, rename: (name: string) => string): number | undefined {
  return stored.find((l) => rename(l.layer) === layer)?.tensors[0]?.shape.at(-1);
}

/** `Conv1/kernel:0` and `Conv1_2/kernel:0` both name the `kernel` of their layer. */
export const weightKey = (name: string) => name.replace(/:\d+$/, '').split('/').pop()!;

/**
 * Assigns stored weights to `model`, matching layers by name. Within a layer, tensors match by
 * name, or by position when the file uses generic names (Keras 1's `uniform1`, `conv1_b`). Every
 * layer of the model that has weights must be covered and every shape must agree; otherwise nothing
 * is assigned and the error names the layer and both shapes.
 */
export function assignWeights(model: LayersModel, stored: StoredLayers, source: string, options: AssignOptions = {}): AssignResult {
  const rename = options.rename ?? ((name: string) => name);
  const assignments: Array<{ variable: tfc.Variable; tensor: StoredTensor }> = [];
  const matched = new Set<string>();
  const unused: string[] = [];
  for (const { layer: fileLayer, tensors } of stored) {
    if (tensors.length === 0) continue;
    const layerName = rename(fileLayer);
    const layer = model.layers.find((l) => l.name === layerName);
    if (!layer) {
      if (options.allowUnused) {
        unused.push(fileLayer);
        continue;
      }
      throw new Error(`${source}: layer '${fileLayer}'${layerName !== fileLayer ? ` (as '${layerName}')` : ''} is not in model ${model.name}`);
    }
    if (layer.weights.length !== tensors.length) {
      throw new Error(`${source}: layer '${layerName}' has ${layer.weights.length} weights in the model but ${tensors.length} in the file`);
    }
    matched.add(layer.name);
    const byName = new Map(layer.weights.map((w) => [weightKey(w.originalName), w]));
    const namesAgree = tensors.every((t) => byName.has(weightKey(t.name)));
    tensors.forEach((tensor, i) => {
      const variable = namesAgree ? byName.get(weightKey(tensor.name))! : layer.weights[i]!;
      if (tensor.shape.join(',') !== variable.shape.join(',')) {
        throw new Error(`${source}: layer '${layerName}' weight '${weightKey(variable.originalName)}' is [${tensor.shape}] in the file but [${variable.shape}] in the model`);
      }
      assignments.push({ variable: variable.read() as tfc.Variable, tensor });
    });
  }
  const missing = model.layers.filter((l) => l.weights.length > 0 && !matched.has(l.name) && !options.optional?.includes(l.name)).map((l) => l.name);
  if (missing.length > 0) {
    throw new Error(`${source}: no weights for layer${missing.length > 1 ? 's' : ''} ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? `, … (${missing.length} in all)` : ''}`);
  }
  for (const { variable, tensor } of assignments) {
    tfc.tidy(() => variable.assign(tfc.tensor(tensor.values, tensor.shape)));
  }
  return { layers: matched.size, tensors: assignments.length, unused };
}
