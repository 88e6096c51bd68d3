import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initializers, type LayersModel } from '@tensorflow/tfjs-layers';
import { denseHead, type Classifier } from './classifier.js';
import { downloadWeights } from './download.js';
import { readKerasH5 } from './keras-h5.js';
import { assignWeights } from './load-weights.js';
import { getVariant, variantName, type CreateModelOptions, type ModelDefinition } from './registry.js';
import { readTfjsLayersWeights } from './tfjs-layers-format.js';
import { localWeightsFile, weightsCacheDir, type KnownWeights } from './weights.js';

/** Where `weights` points: a local file or folder, fetched into the cache first when it is a URL or `imagenet`. */
async function weightsPath(definition: ModelDefinition, weights: string, alpha: number, inputSize: number, weightsDir?: string): Promise<string> {
  if (weights === 'imagenet') {
    const choices = definition.imagenet({ alpha, inputSize });
    if (choices.length === 0) throw new Error(`no ImageNet weights are known for ${definition.name} alpha ${alpha}`);
    return (await localWeightsFile(choices, weightsDir)) ?? downloadWeights(choices[0]!, { dir: weightsCacheDir(), progress: true });
  }
  if (/^https?:\/\//.test(weights)) {
    const known = definition.imagenet({ alpha, inputSize }).find((k) => k.url === weights);
    return downloadWeights(known ?? { file: basename(new URL(weights).pathname), url: weights }, { dir: weightsCacheDir(), progress: true });
  }
  return weights;
}

/**
 * Loads weights into `model` from a Keras .h5 file or a tfjs layers folder; returns what was used.
 * Layers of the file that the model lacks (a classifier top) are ignored and named in the result;
 * layers of the model that the file lacks are an error, except `optional` ones.
 */
async function loadInto(model: LayersModel, definition: ModelDefinition, path: string, alpha: number, optional: readonly string[] = []): Promise<string> {
  const info = await stat(path).catch(() => null);
  if (!info) throw new Error(`weights not found: ${path}`);
  const source = info.isDirectory() ? join(path, 'model.json') : path;
  const stored = info.isDirectory() ? await readTfjsLayersWeights(path) : await readKerasH5(path);
  const rename = definition.renamer?.(stored.map((l) => l.layer)) ?? ((name: string) => name);
  const held = definition.inferAlpha?.(stored, rename);
  if (held !== undefined && held !== alpha) throw new Error(`${source} holds ${definition.name} alpha ${held} weights, not alpha ${alpha}; pass --alpha ${held}`);
  const result = assignWeights(model, stored, source, { rename, allowUnused: true, optional });
  return result.unused.length ? `${source} (${result.unused.length} layers of it unused: ${result.unused.join(', ')})` : source;
}

/** Makes only the layers of the backbone's last `blocks` blocks trainable. */
function unfreezeLastBlocks(backbone: LayersModel, definition: ModelDefinition, blocks: number): void {
  const ends = backbone.layers.flatMap((layer, i) => (definition.blockEnds.test(layer.name) ? [i] : []));
  if (!Number.isInteger(blocks) || blocks < 1 || blocks > ends.length) throw new Error(`--fine-tune takes 1…${ends.length} blocks for ${definition.name}, got ${blocks}`);
  const first = blocks === ends.length ? 0 : ends[ends.length - 1 - blocks]! + 1;
  backbone.trainable = true;
  backbone.layers.forEach((layer, i) => (layer.trainable = i >= first));
}

/** True when `path` is byte for byte one of the `known` published files (by its sha256 or md5). */
async function isPublishedFile(path: string, known: readonly KnownWeights[]): Promise<boolean> {
  const candidate = known.find((k) => k.file === basename(path) && (k.sha256 || k.md5));
  if (!candidate) return false;
  // streamed: VGG-19's file is 550 MB, and loading it is the next step anyway
  const hash = createHash(candidate.sha256 ? 'sha256' : 'md5');
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  } catch {
    return false;
  }
  return hash.digest('hex') === (candidate.sha256 ?? candidate.md5);
}

/**
 * The head a transfer-learning architecture trains on its backbone's `features`-wide output (its
 * study head, the feature scaling, the seed). Exported so that a head trained on features held in
 * memory (the recipe bench) is the one `createModel` gives the graph.
 */
export function transferHead(definition: ModelDefinition, features: number, options: Pick<CreateModelOptions, 'classes' | 'featureNorm' | 'seed'>): LayersModel {
  if (definition.training.kind !== 'transfer') throw new Error(`${definition.name} trains from scratch: it has no head on frozen features`);
  return denseHead(features, options.classes, { ...definition.training.head, ...(options.featureNorm !== undefined ? { featureNorm: options.featureNorm } : {}), seed: options.seed });
}

/**
 * Builds a registered architecture as a {@link Classifier} for `classes` classes, as the study
 * trains it: a frozen backbone with ImageNet (or given) weights and a dense head, or the whole
 * network from scratch.
 */
export async function createModel(name: string, options: CreateModelOptions): Promise<Classifier> {
  const variant = getVariant(name);
  const { definition } = variant;
  const { classes, weights = definition.training.kind === 'scratch' ? 'none' : 'imagenet' } = options;
  if (!variant.alias && variant.alpha !== undefined && options.alpha !== undefined && options.alpha !== variant.alpha) {
    throw new Error(`${name} is alpha ${variant.alpha}; for alpha ${options.alpha} use ${variantName(definition.name, options.alpha)} or ${definition.name} --alpha ${options.alpha}`);
  }
  const alpha = options.alpha ?? variant.alpha ?? 1;
  if (definition.alphas && !definition.alphas.includes(alpha) && weights === 'imagenet') {
    throw new Error(`${definition.name} has ImageNet weights for alpha ${definition.alphas.join(', ')}, not ${alpha}`);
  }
  const inputSize = options.inputSize ?? variant.inputSize;
  if (inputSize < definition.minInputSize) throw new Error(`${name} needs an input of at least ${definition.minInputSize} px, got ${inputSize}`);
  // reports and the feature cache name the variant by its tag (`mobilenetv2_050`), however it was asked for
  const label = definition.alphas ? variantName(definition.name, alpha) : definition.name;
  /**
   * Loads the weights into `model` and says how reports name them. Only bytes a published hash
   * verifies are `imagenet` — one label, so one feature cache — wherever the file came from (the
   * embedded copy, the cache, `weightsDir`, a path): a file without a known hash, or one dropped
   * into the cache, is named by its path.
   */
  const load = async (model: LayersModel, optional?: readonly string[]): Promise<string> => {
    const path = await weightsPath(definition, weights, alpha, inputSize, options.weightsDir);
    const source = await loadInto(model, definition, path, alpha, optional);
    return (await isPublishedFile(path, definition.imagenet({ alpha, inputSize }))) ? `imagenet (${basename(source)})` : source;
  };

  if (definition.training.kind === 'scratch') {
    const network = definition.build({ inputSize, alpha, includeTop: true, classes, classifierActivation: 'linear', weights });
    try {
      const source = weights === 'none' ? 'none (from scratch)' : await load(network, definition.training.topLayers);
      return { name: label, inputSize, preprocessing: definition.preprocessing, classes, backbone: null, head: network, weights: source };
    } catch (error) {
      network.dispose();
      throw error;
    }
  }
  const backbone = definition.build({ inputSize, alpha, includeTop: false, classes, pooling: 'avg', weights });
  try {
    const seed = options.seed ?? 0;
    if (weights === 'none') reseedKernels(backbone, seed);
    const source = weights === 'none' ? `none (random backbone, seed ${seed})` : await load(backbone);
    if (options.fineTune) unfreezeLastBlocks(backbone, definition, options.fineTune);
    else backbone.trainable = false;
    const features = backbone.outputs[0]!.shape[1] as number;
    return { name: label, inputSize, preprocessing: definition.preprocessing, classes, backbone, head: transferHead(definition, features, options), weights: source };
  } catch (error) {
    backbone.dispose();
    throw error;
  }
}

/**
 * Draws every kernel of `network` again from a Glorot-uniform (Keras' default kernel initializer)
 * seeded by `seed` and the kernel's place, so a random backbone is the same network whenever the run
 * asks for the same seed: its features may then be cached under the seed's name, and a resumed run
 * (which rebuilds it) computes what the run before the interruption computed. Biases and batch
 * normalisation start from constants already.
 */
function reseedKernels(network: LayersModel, seed: number): void {
  network.weights
    .filter((w) => /kernel$/.test(w.originalName))
    .forEach((w, i) => {
      const value = initializers.glorotUniform({ seed: seed * 100_003 + i }).apply(w.shape);
      w.write(value);
      tf.dispose(value);
    });
}
