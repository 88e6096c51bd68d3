import type { Classifier } from './classifier.js';
import type { Preprocessing } from './preprocessing.js';

export interface CreateModelOptions {
  classes: number;
  /** `imagenet` (the known source), `none` (random initialisation) or a path to a weights file. */
  weights?: string;
  inputSize?: number;
  /** Width multiplier of the MobileNets. */
  alpha?: number;
}

/** One architecture: what it needs and how to build it. */
export interface ModelDefinition {
  name: string;
  description: string;
  defaultInputSize: number;
  preprocessing: Preprocessing;
  /** Where its ImageNet weights come from, for `listModels` and error messages. */
  weightSources: string[];
  create(options: CreateModelOptions): Promise<Classifier>;
}

const registry = new Map<string, ModelDefinition>();

export function registerModel(definition: ModelDefinition): void {
  if (registry.has(definition.name)) throw new Error(`model '${definition.name}' is already registered`);
  registry.set(definition.name, definition);
}

export function listModels(): ModelDefinition[] {
  return [...registry.values()].sort((a, b) => a.name.localeCompare(b.name));
}

export function getModel(name: string): ModelDefinition {
  const definition = registry.get(name);
  if (!definition) throw new Error(`unknown model '${name}'; known models: ${listModels().map((m) => m.name).join(', ')}`);
  return definition;
}

export async function createModel(name: string, options: CreateModelOptions): Promise<Classifier> {
  return getModel(name).create(options);
}
