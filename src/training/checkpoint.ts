import { readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { writeFileAtomic, writeJsonAtomic } from '../core/files.js';
import type { Classifier } from '../models/classifier.js';

/** A tensor with a name, as optimizers report their slots. */
export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

const LATEST = 'latest.json';
const TENSORS = 'tensors.bin';
const STATE = 'state.json';

/** The tensors of a checkpoint, in a fixed order; the caller owns (and disposes) loaded ones. */
export interface CheckpointTensors {
  /** {@link trainedVariables} of the classifier, in order. */
  weights: tf.Tensor[];
  /** The optimizer's slots (`optimizer.getWeights()`), in order. */
  optimizer: NamedTensor[];
  /** The weights of the best epoch so far, when early stopping may restore them. */
  best: tf.Tensor[] | null;
}

interface StoredState<S> {
  state: S;
  groups: { weights: number; optimizer: string[]; best: number };
  specs: tf.io.WeightsManifestEntry[];
  bytes: number;
}

/**
 * tfjs' Adam keeps β₁ᵗ and β₂ᵗ as running products (one multiply per step), but its `setWeights`
 * recomputes them with `pow`, which rounds differently: a resumed run would drift from an
 * uninterrupted one in the 7th digit. So they are saved beside the slots, under these names, and
 * restored as they were.
 */
const ADAM_POWERS = { 'rxcnn/adam_beta1_power': 'accBeta1', 'rxcnn/adam_beta2_power': 'accBeta2' } as const;
type AdamPowers = Partial<Record<(typeof ADAM_POWERS)[keyof typeof ADAM_POWERS], tf.Variable>>;

/** The optimizer's slots as a checkpoint keeps them; the first (the iteration count) is a fresh scalar for the caller to dispose, the rest are the optimizer's own. */
export async function optimizerSlots(optimizer: tf.Optimizer): Promise<NamedTensor[]> {
  const slots = await optimizer.getWeights();
  const own = optimizer as unknown as AdamPowers;
  for (const [name, field] of Object.entries(ADAM_POWERS)) {
    const power = own[field];
    if (power) slots.push({ name, tensor: power });
  }
  return slots;
}

/** Puts {@link optimizerSlots} back into `optimizer` (of the same kind and for the same variables). */
export async function restoreOptimizer(optimizer: tf.Optimizer, slots: readonly NamedTensor[]): Promise<void> {
  const isPower = (s: NamedTensor) => s.name in ADAM_POWERS;
  await optimizer.setWeights(slots.filter((s) => !isPower(s)));
  const own = optimizer as unknown as AdamPowers;
  for (const slot of slots.filter(isPower)) own[ADAM_POWERS[slot.name as keyof typeof ADAM_POWERS]]?.assign(slot.tensor as tf.Scalar);
}

/**
 * What a run changes: every weight of the head, and the backbone's trainable weights when it
 * trains (fine-tuning). A frozen backbone is rebuilt from its weights source instead.
 */
export function trainedVariables(classifier: Classifier): Array<{ read(): tf.Tensor; write(value: tf.Tensor): void }> {
  return [...classifier.head.weights, ...(classifier.backbone?.trainableWeights ?? [])];
}

/**
 * Writes checkpoint `epoch` under `root`: `epoch-NNNN/{tensors.bin,state.json}`, then points
 * `latest.json` at it (each file written atomically, the pointer last), then removes older ones.
 * A crash at any moment leaves `latest.json` naming a complete checkpoint, or no pointer at all.
 */
export async function saveCheckpoint<S>(root: string, epoch: number, state: S, tensors: CheckpointTensors): Promise<string> {
  const name = `epoch-${String(epoch).padStart(4, '0')}`;
  const dir = join(root, name);
  const named: NamedTensor[] = [
    ...tensors.weights.map((tensor, i) => ({ name: `weights/${i}`, tensor })),
    ...tensors.optimizer.map(({ tensor }, i) => ({ name: `optimizer/${i}`, tensor })),
    ...(tensors.best ?? []).map((tensor, i) => ({ name: `best/${i}`, tensor })),
  ];
  const { data, specs } = await tf.io.encodeWeights(named);
  const stored: StoredState<S> = {
    state,
    groups: { weights: tensors.weights.length, optimizer: tensors.optimizer.map((t) => t.name), best: tensors.best?.length ?? 0 },
    specs,
    bytes: data.byteLength,
  };
  await writeFileAtomic(join(dir, TENSORS), new Uint8Array(data));
  await writeJsonAtomic(join(dir, STATE), stored);
  await writeJsonAtomic(join(root, LATEST), { checkpoint: name });
  const stale = (await readdir(root)).filter((entry) => entry.startsWith('epoch-') && entry !== name);
  await Promise.all(stale.map((entry) => rm(join(root, entry), { recursive: true, force: true })));
  return dir;
}

/** The folder and JSON of the latest complete checkpoint under `root` (no tensors read), or null. */
async function latest<S>(root: string): Promise<{ dir: string; stored: StoredState<S> } | null> {
  const pointer = await readFile(join(root, LATEST), 'utf8').catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? null : Promise.reject(error)));
  if (pointer === null) return null;
  const dir = join(root, (JSON.parse(pointer) as { checkpoint: string }).checkpoint);
  return { dir, stored: JSON.parse(await readFile(join(dir, STATE), 'utf8')) as StoredState<S> };
}

/** The state of the latest complete checkpoint under `root`, or null when there is none. */
export async function loadCheckpointState<S>(root: string): Promise<S | null> {
  return (await latest<S>(root))?.stored.state ?? null;
}

/** The latest complete checkpoint under `root`, or null when there is none. */
export async function loadCheckpoint<S>(root: string): Promise<{ dir: string; state: S; tensors: CheckpointTensors } | null> {
  const found = await latest<S>(root);
  if (found === null) return null;
  const { dir, stored } = found;
  const buffer = await readFile(join(dir, TENSORS));
  if (buffer.byteLength !== stored.bytes) throw new Error(`checkpoint ${dir} is damaged: ${TENSORS} has ${buffer.byteLength} bytes, expected ${stored.bytes}`);
  const map = tf.io.decodeWeights(buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength) as ArrayBuffer, stored.specs);
  const group = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => map[`${prefix}/${i}`]!);
  const { weights, optimizer, best } = stored.groups;
  return {
    dir,
    state: stored.state,
    tensors: {
      weights: group('weights', weights),
      optimizer: group('optimizer', optimizer.length).map((tensor, i) => ({ name: optimizer[i]!, tensor })),
      best: best > 0 ? group('best', best) : null,
    },
  };
}

/** Copies `values` into the classifier's trained variables, checking every shape. */
export function restoreWeights(classifier: Classifier, values: readonly tf.Tensor[]): void {
  const variables = trainedVariables(classifier);
  if (variables.length !== values.length) throw new Error(`checkpoint holds ${values.length} weights, ${classifier.name} trains ${variables.length}: it is from another model or settings`);
  variables.forEach((variable, i) => {
    const current = variable.read();
    if (!tf.util.arraysEqual(current.shape, values[i]!.shape)) {
      throw new Error(`checkpoint weight ${i} has shape [${values[i]!.shape}], ${classifier.name} expects [${current.shape}]: it is from another model or settings`);
    }
    variable.write(values[i]!);
  });
}
