import { open } from 'node:fs/promises';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import h5wasm from 'h5wasm/node';
import { assignWeights, type AssignOptions, type AssignResult, type StoredLayers } from './load-weights.js';

type H5Group = InstanceType<typeof h5wasm.Group>;

function stringList(value: unknown): string[] {
  if (value == null) return [];
  if (typeof value === 'string') return [value];
  return Array.from(value as ArrayLike<unknown>, String);
}

const HDF5_SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Where HDF5 may put its signature: byte 0, or after a user block of 512, 1024, 2048, … bytes. */
const SIGNATURE_OFFSETS = [0, ...Array.from({ length: 8 }, (_, i) => 512 << i)];

/** Whether the file starts like HDF5 (checked here because HDF5 itself answers other files with an opaque error). */
async function isHdf5(path: string): Promise<boolean> {
  const handle = await open(path, 'r').catch((error: NodeJS.ErrnoException) => {
    throw new Error(error.code === 'ENOENT' ? `weights file not found: ${path}` : `cannot read weights file ${path}: ${error.code ?? error.message}`);
  });
  try {
    const head = Buffer.alloc(SIGNATURE_OFFSETS.at(-1)! + HDF5_SIGNATURE.length);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    return SIGNATURE_OFFSETS.some((at) => at + HDF5_SIGNATURE.length <= bytesRead && head.subarray(at, at + HDF5_SIGNATURE.length).equals(HDF5_SIGNATURE));
  } finally {
    await handle.close();
  }
}

/** The weights of a Keras HDF5 file (`save_weights` output or a whole-model `.h5`), layer by layer. */
export async function readKerasH5(path: string): Promise<StoredLayers> {
  await h5wasm.ready;
  if (!(await isHdf5(path))) throw new Error(`${path}: not an HDF5 file (a Keras .h5 weights file was expected)`);
  const file = new h5wasm.File(path, 'r');
  try {
    const root = (file.keys().includes('model_weights') ? file.get('model_weights') : file) as H5Group;
    const layers = stringList(root.attrs['layer_names']?.value);
    if (layers.length === 0) throw new Error(`${path}: not a Keras weights file (no layer_names attribute)`);
    return layers.map((layer) => {
      const group = root.get(layer) as H5Group;
      return {
        layer,
        tensors: stringList(group.attrs['weight_names']?.value).map((name) => {
          const dataset = group.get(name) as InstanceType<typeof h5wasm.Dataset>;
          const value = dataset.value as unknown;
          // Scalars (Keras' Normalization `count`) come back bare, and int64 as BigInt.
          const values =
            value instanceof Float32Array
              ? value
              : Float32Array.from(typeof value === 'number' || typeof value === 'bigint' ? [value] : Array.from(value as ArrayLike<number | bigint>), Number);
          return { name, shape: dataset.shape ?? [], values };
        }),
      };
    });
  } finally {
    file.close();
  }
}

/** Loads Keras HDF5 weights into `model` by layer name; see {@link assignWeights} for the rules. */
export async function loadKerasH5(model: LayersModel, path: string, options: AssignOptions = {}): Promise<AssignResult> {
  return assignWeights(model, await readKerasH5(path), path, options);
}
