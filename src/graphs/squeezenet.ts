import { registerGraph, type GraphDefinition } from './graph.js';
import { headOnCachedFeatures, VALIDATED_HEAD } from './recipes.js';

/** SqueezeNet 1.1 transfer learning: frozen ImageNet backbone, softmax head. */
export const squeezeNetGraph: GraphDefinition = {
  name: 'squeezenet',
  model: 'squeezenet',
  description: 'SqueezeNet 1.1 with a frozen ImageNet backbone and a softmax head',
  experiment: headOnCachedFeatures(VALIDATED_HEAD),
};

registerGraph(squeezeNetGraph);
