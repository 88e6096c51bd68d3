import { join } from 'node:path';
import type { ExperimentOptions, GraphDefinition } from '../graphs/index.js';
import { getModel } from '../models/index.js';
import { exists } from '../models/weights.js';

/**
 * The ImageNet weights file of `graph`'s model in `dir`, named as the model's registry lists it
 * (alpha and input size as the run will use them), or undefined: the run then looks its weights up
 * as usual. Only for runs that would load ImageNet weights.
 */
export async function weightsFromDir(dir: string, graph: GraphDefinition, given: Partial<ExperimentOptions>): Promise<string | undefined> {
  const definition = getModel(graph.model);
  const weights = given.weights ?? graph.defaults.weights ?? (definition.training.kind === 'scratch' ? 'none' : 'imagenet');
  if (weights !== 'imagenet') return undefined;
  const alpha = given.alpha ?? graph.defaults.alpha ?? definition.alphas?.[0] ?? 1;
  const inputSize = given.imageSize ?? graph.defaults.imageSize ?? definition.defaultInputSize;
  for (const { file } of definition.imagenet({ alpha, inputSize })) {
    if (await exists(join(dir, file))) return join(dir, file);
  }
  return undefined;
}
