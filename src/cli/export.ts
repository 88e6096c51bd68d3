/**
 * `npm run export -- <run folder | model name> --out F.onnx`: a trained classifier (a run's
 * `model/`) as uint8 pixels → class probabilities, or a zoo network's ImageNet backbone as uint8
 * pixels → features, in ONNX. The graph does the model's preprocessing itself.
 */
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tfl from '@tensorflow/tfjs-layers';
import type { SymbolicTensor } from '@tensorflow/tfjs-layers';
import { useBackend } from '../backend.js';
import { writeFileAtomic } from '../core/files.js';
import { disposeClassifier, disposeModel } from '../models/classifier.js';
import { createModel, getModel, listModels } from '../models/index.js';
import { loadModel } from '../models/persistence.js';
import { PREPROCESSINGS, type Preprocessing } from '../models/preprocessing.js';
import { exportOnnx, type OnnxModel } from '../onnx/export.js';

const USAGE = `usage: npm run export -- <run folder | model name> --out F.onnx [--up-to LAYER]
  run folder: its model/ (the trained classifier) → probabilities
  model name: its ImageNet backbone → features, with [--alpha A] [--image-size N] [--weights W] [--weights-dir DIR]`;

export interface ExportResult {
  onnx: OnnxModel;
  /** What was exported, for the summary line. */
  source: string;
  preprocessing: Preprocessing;
}

/** A run folder (or a model folder) holding a saved classifier → its probabilities as ONNX. */
async function exportSaved(dir: string, upTo: string | undefined): Promise<ExportResult> {
  const modelDir = (await stat(join(dir, 'model', 'model.json')).catch(() => null)) ? join(dir, 'model') : dir;
  const { model, metadata } = await loadModel(modelDir);
  try {
    const preprocessing = metadata?.preprocessing as Preprocessing | undefined;
    if (!preprocessing || !PREPROCESSINGS.includes(preprocessing)) throw new Error(`${modelDir}/model.json does not say how its input is preprocessed (userDefinedMetadata.rxcnn.preprocessing): not saved by rxcnn`);
    return { onnx: exportOnnx(model, { preprocessing, ...(upTo ? { upTo } : { outputName: 'probabilities' }) }), source: `${modelDir} (${metadata!.classNames?.length ?? '?'} classes)`, preprocessing };
  } finally {
    disposeModel(model);
  }
}

/**
 * A zoo network's backbone with ImageNet (or given) weights → its pooled features as ONNX. A network
 * the study trains from scratch (VGG-19) is exported up to its last block, average-pooled.
 */
async function exportBackbone(name: string, options: { alpha?: number; inputSize?: number; weights?: string; weightsDir?: string; upTo?: string }): Promise<ExportResult> {
  const definition = getModel(name);
  const classifier = await createModel(name, { classes: 1, weights: options.weights ?? 'imagenet', ...(options.alpha !== undefined ? { alpha: options.alpha } : {}), ...(options.inputSize !== undefined ? { inputSize: options.inputSize } : {}), ...(options.weightsDir ? { weightsDir: options.weightsDir } : {}) });
  try {
    let backbone = classifier.backbone;
    if (!backbone) {
      const network = classifier.head;
      const lastBlock = [...network.layers].reverse().find((l) => definition.blockEnds.test(l.name))!;
      const pooled = tfl.layers.globalAveragePooling2d({ name: 'avg_pool' }).apply(lastBlock.output as SymbolicTensor) as SymbolicTensor;
      backbone = tfl.model({ inputs: network.inputs, outputs: pooled, name: `${name}_backbone` });
    }
    return { onnx: exportOnnx(backbone, { preprocessing: classifier.preprocessing, ...(options.upTo ? { upTo: options.upTo } : {}) }), source: `${classifier.name} backbone, weights ${classifier.weights}`, preprocessing: classifier.preprocessing };
  } finally {
    disposeClassifier(classifier);
  }
}

const positiveNumber = (flag: string, value: string | undefined) => {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!(n > 0)) throw new Error(`--${flag} takes a positive number, got '${value}'`);
  return n;
};

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { out: { type: 'string' }, 'up-to': { type: 'string' }, alpha: { type: 'string' }, 'image-size': { type: 'string' }, weights: { type: 'string' }, 'weights-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 1 || !values.out) throw new Error(`give one run folder or model name and --out F.onnx\n${USAGE}`);
  const [what] = positionals as [string];
  // The export computes nothing: the pure-JS backend only holds the weights while they are read.
  await useBackend('cpu');
  const isFolder = (await stat(what).catch(() => null))?.isDirectory() ?? false;
  const known = listModels().map((d) => d.name);
  if (!isFolder && !known.includes(what)) throw new Error(`'${what}' is neither a folder nor a model; models: ${known.join(', ')}`);
  const result = isFolder
    ? await exportSaved(what, values['up-to'])
    : await exportBackbone(what, { alpha: positiveNumber('alpha', values.alpha), inputSize: positiveNumber('image-size', values['image-size']), weights: values.weights, weightsDir: values['weights-dir'], upTo: values['up-to'] });
  const out = resolve(values.out);
  await writeFileAtomic(out, result.onnx.bytes);
  const { input, output } = result.onnx;
  console.log(`${out}: ${(result.onnx.bytes.length / 2 ** 20).toFixed(1)} MB, ${result.source}; '${input.name}' uint8 [batch, ${input.shape.join(', ')}] (RGB, preprocessing ${result.preprocessing} inside) → '${output.name}' float32 [batch, ${output.width}]`);
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (error: unknown) => {
      console.error(`export: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    },
  );
}
