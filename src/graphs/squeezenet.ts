import { registerGraph, type GraphDefinition } from './graph.js';
import { HEAD_RECIPES, headOnCachedFeatures } from './recipes.js';

/** SqueezeNet 1.1 transfer learning: frozen ImageNet backbone, softmax head. */
export const squeezeNetGraph: GraphDefinition = {
  name: 'squeezenet',
  model: 'squeezenet',
  description: 'SqueezeNet 1.1 with a frozen ImageNet backbone and a softmax head',
  experiment: headOnCachedFeatures(HEAD_RECIPES.squeezenet),
};

registerGraph(squeezeNetGraph);
