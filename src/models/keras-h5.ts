import { access } from 'node:fs/promises';
import * as tfc from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import h5wasm from 'h5wasm/node';

export interface KerasH5Options {
  /** Maps a layer name found in the file to the model's (older Keras versions used other names). */
  rename?: (fileLayerName: string) => string;
}

type H5Group = InstanceType<typeof h5wasm.Group>;

function stringList(value: unknown): string[] {
  if (value == null) return [];
  if (typeof value === 'string') return [value];
  return Array.from(value as ArrayLike<unknown>, String);
}

/** `Conv1/kernel:0` and `Conv1_2/kernel:0` both name the `kernel` of their layer. */
const weightKey = (name: string) => name.replace(/:\d+$/, '').split('/').pop()!;

/**
 * Loads Keras HDF5 weights (a `save_weights` file or a whole-model `.h5`) into `model`, matching
 * layers by name. Every layer with weights, in the file and in the model, must be matched and
 * every shape must agree; otherwise nothing is half-loaded and the error names the layer and both
 * shapes.
 */
export async function loadKerasH5(model: LayersModel, path: string, options: KerasH5Options = {}): Promise<{ layers: number; tensors: number }> {
  await h5wasm.ready;
  const rename = options.rename ?? ((name: string) => name);
  await access(path).catch(() => {
    throw new Error(`weights file not found: ${path}`);
  });
  const file = new h5wasm.File(path, 'r');
  try {
    const root = (file.keys().includes('model_weights') ? file.get('model_weights') : file) as H5Group;
    const fileLayers = stringList(root.attrs['layer_names']?.value);
    if (fileLayers.length === 0) throw new Error(`${path}: not a Keras weights file (no layer_names attribute)`);

    const assignments: Array<{ variable: tfc.Variable; values: Float32Array; shape: number[] }> = [];
    const matched = new Set<string>();
    for (const fileLayer of fileLayers) {
      const group = root.get(fileLayer) as H5Group;
      const names = stringList(group.attrs['weight_names']?.value);
      if (names.length === 0) continue;
      const layerName = rename(fileLayer);
      const layer = model.layers.find((l) => l.name === layerName);
      if (!layer) throw new Error(`${path}: layer '${fileLayer}' (as '${layerName}') is not in model ${model.name}`);
      matched.add(layer.name);
      const variables = new Map(layer.weights.map((w) => [weightKey(w.originalName), w]));
      if (variables.size !== names.length) {
        throw new Error(`${path}: layer '${layerName}' has ${variables.size} weights in the model but ${names.length} in the file`);
      }
      for (const name of names) {
        const dataset = group.get(name) as InstanceType<typeof h5wasm.Dataset>;
        const variable = variables.get(weightKey(name));
        if (!variable) throw new Error(`${path}: layer '${layerName}' has no weight '${weightKey(name)}' in the model`);
        const shape = dataset.shape ?? [];
        if (shape.join(',') !== variable.shape.join(',')) {
          throw new Error(`${path}: layer '${layerName}' weight '${weightKey(name)}' is [${shape}] in the file but [${variable.shape}] in the model`);
        }
        assignments.push({ variable: variable.read() as tfc.Variable, values: Float32Array.from(dataset.value as ArrayLike<number>), shape });
      }
    }
    const missing = model.layers.filter((l) => l.weights.length > 0 && !matched.has(l.name)).map((l) => l.name);
    if (missing.length > 0) throw new Error(`${path}: no weights for layer${missing.length > 1 ? 's' : ''} ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`);
    for (const { variable, values, shape } of assignments) {
      tfc.tidy(() => variable.assign(tfc.tensor(values, shape)));
    }
    return { layers: matched.size, tensors: assignments.length };
  } finally {
    file.close();
  }
}
