import { fileURLToPath } from 'node:url';
import { useBackend } from '../backend.js';
import { getVariant, listVariants, variantName, type ModelVariant } from '../models/index.js';

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

/** The variants `npm run models` lists by default: every tag, without the architectures' own names (aliases of a tag). */
export const listedVariants = (): ModelVariant[] => listVariants().filter((v) => !v.alias);

/** One row per variant, counted by building it. */
export function describeModels(variants: readonly ModelVariant[] = listedVariants()): ModelRow[] {
  return variants.map((v) => {
    const d = v.definition;
    const alpha = v.alpha ?? 1;
    const count = (includeTop: boolean) => {
      const model = d.build({ inputSize: v.inputSize, alpha, includeTop, classes: 1000, pooling: 'avg', weights: 'imagenet' });
      const params = model.countParams();
      model.dispose();
      return params;
    };
    return {
      name: v.name,
      params: count(true),
      backboneParams: count(false),
      inputSize: v.inputSize,
      alpha: v.alpha ?? null,
      preprocessing: v.preprocessing,
      training: d.training.kind === 'scratch' ? 'from scratch' : `frozen backbone + head${d.training.head.hidden ? ` Dense(${d.training.head.hidden.join(', ')})` : ''}${d.training.head.dropout ? ` Dropout(${d.training.head.dropout})` : ''}`,
      weights: v.weights.map((k) => k.url),
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
  const aliases = listVariants().filter((v) => v.alias).map((v) => `${v.name} = ${variantName(v.definition.name, v.alpha!)}`);
  return [header, ...lines, '', `Architecture names stand for their default variant: ${aliases.join(', ')}`, '', 'ImageNet weights (no top; cached in $RXCNN_CACHE/weights, default ~/.cache/rxcnn/weights):', ...sources].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await useBackend('auto');
  const names = process.argv.slice(2);
  console.log(formatModels(describeModels(names.length ? names.map(getVariant) : listedVariants())));
}
