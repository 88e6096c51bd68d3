import { registerGraph, type GraphDefinition } from './graph.js';
import { headOnCachedFeatures, VALIDATED_HEAD } from './recipes.js';

/** The study's EfficientNet: frozen ImageNet backbone, Dense(1000, relu) + Dropout(0.5) + softmax head; B0…B4. */
export const efficientNetGraphs: GraphDefinition[] = [0, 1, 2, 3, 4].map((variant) => ({
  name: `efficientnetb${variant}`,
  model: `efficientnetb${variant}`,
  description: `EfficientNet-B${variant} with a frozen ImageNet backbone and a Dense(1000, relu) + Dropout(0.5) + softmax head`,
  experiment: headOnCachedFeatures(VALIDATED_HEAD),
}));

efficientNetGraphs.forEach(registerGraph);
