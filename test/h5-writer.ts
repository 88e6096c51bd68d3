import type { LayersModel } from '@tensorflow/tfjs-layers';
import h5wasm from 'h5wasm/node';

/**
 * Writes `model`'s weights as Keras' `save_weights` does (layer_names, weight_names, one group per
 * layer), optionally under other layer names — a stand-in for weight files that cannot be fetched here.
 */
export async function writeKerasH5(model: LayersModel, path: string, rename: (layer: string) => string = (n) => n): Promise<void> {
  await h5wasm.ready;
  const file = new h5wasm.File(path, 'w');
  try {
    file.create_attribute('layer_names', model.layers.map((l) => rename(l.name)));
    for (const layer of model.layers) {
      const name = rename(layer.name);
      const group = file.create_group(name);
      if (layer.weights.length === 0) continue;
      const weightNames = layer.weights.map((w) => `${name}/${w.originalName.split('/').pop()}:0`);
      group.create_attribute('weight_names', weightNames);
      const inner = group.create_group(name);
      layer.weights.forEach((w, i) => {
        inner.create_dataset({ name: weightNames[i]!.split('/').pop()!, data: w.read().dataSync() as Float32Array, shape: w.shape as number[], dtype: '<f' });
      });
    }
  } finally {
    file.close();
  }
}
