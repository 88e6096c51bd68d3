import { fileURLToPath } from 'node:url';
import { useBackend } from '../backend.js';
import { getModel, listModels, type ModelDefinition } from '../models/index.js';

export interface ModelRow {
  name: string;
  /** Parameters of the Keras network with its 1000-class ImageNet top. */
  params: number;
  /** Parameters without the top (the frozen backbone of transfer learning). */
  backboneParams: number;
  inputSize: number;
  alpha: number | null;
  preprocessing: string;
  training: string;
  weights: string[];
}

/** One row per registered architecture, counted by building it (at its default width). */
export function describeModels(definitions: readonly ModelDefinition[] = listModels()): ModelRow[] {
  return definitions.map((d) => {
    const alpha = d.alphas?.[0] ?? 1;
    const count = (includeTop: boolean) => {
      const model = d.build({ inputSize: d.defaultInputSize, alpha, includeTop, classes: 1000, pooling: 'avg', weights: 'imagenet' });
      const params = model.countParams();
      model.dispose();
      return params;
    };
    return {
      name: d.name,
      params: count(true),
      backboneParams: count(false),
      inputSize: d.defaultInputSize,
      alpha: d.alphas ? alpha : null,
      preprocessing: d.preprocessing,
      training: d.training.kind === 'scratch' ? 'from scratch' : `frozen backbone + head${d.training.head.hidden ? ` Dense(${d.training.head.hidden.join(', ')})` : ''}${d.training.head.dropout ? ` Dropout(${d.training.head.dropout})` : ''}`,
      weights: d.imagenet({ alpha, inputSize: d.defaultInputSize }).map((k) => k.url),
    };
  });
}

export function formatModels(rows: readonly ModelRow[]): string {
  const n = (x: number) => x.toLocaleString('en-US');
  const lines = rows.map((r) =>
    [r.name.padEnd(18), n(r.params).padStart(12), n(r.backboneParams).padStart(12), String(r.inputSize).padStart(5), (r.alpha === null ? '' : String(r.alpha)).padStart(5), r.preprocessing.padEnd(10), r.training].join(' '),
  );
  const header = ['model'.padEnd(18), 'params'.padStart(12), 'no top'.padStart(12), 'input'.padStart(5), 'alpha'.padStart(5), 'preprocess'.padEnd(10), 'training (study)'].join(' ');
  const sources = rows.map((r) => `  ${r.name}: ${r.weights.join(' | ')}`);
  return [header, ...lines, '', 'ImageNet weights (no top; cached in $RXCNN_CACHE/weights, default ~/.cache/rxcnn/weights):', ...sources].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await useBackend('auto');
  const names = process.argv.slice(2);
  console.log(formatModels(describeModels(names.length ? names.map(getModel) : listModels())));
}
