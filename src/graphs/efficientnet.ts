import { registerGraph, type GraphDefinition } from './graph.js';
import { HEAD_RECIPES, headOnCachedFeatures } from './recipes.js';

/** The study's EfficientNet: frozen ImageNet backbone, Dense(1000, relu) + Dropout(0.5) + softmax head; B0…B4. */
export const efficientNetGraphs: GraphDefinition[] = [0, 1, 2, 3, 4].map((variant) => ({
  name: `efficientnetb${variant}`,
  model: `efficientnetb${variant}`,
  description: `EfficientNet-B${variant} with a frozen ImageNet backbone and a Dense(1000, relu) + Dropout(0.5) + softmax head`,
  // their ImageNet weights cannot be fetched here, so the recipe bench could not search them: they take the recipe of their kind (a frozen ImageNet backbone under a trained head), unvalidated for their own Dense(1000, relu) + Dropout head
  experiment: headOnCachedFeatures(HEAD_RECIPES.frozenBackbone),
}));

efficientNetGraphs.forEach(registerGraph);
