import { registerGraph, type GraphDefinition } from './graph.js';
import { HEAD_RECIPES, headOnCachedFeatures } from './recipes.js';

/** The study's best model: Inception-ResNet-v2, frozen ImageNet backbone, Dense(1000, relu) + softmax head. */
export const inceptionResNetV2Graph: GraphDefinition = {
  name: 'inceptionresnetv2',
  model: 'inceptionresnetv2',
  description: 'Inception-ResNet-v2 with a frozen ImageNet backbone and a Dense(1000, relu) + softmax head',
  // its ImageNet weights cannot be fetched here, so the recipe bench could not search it: it takes the recipe of its kind (a frozen ImageNet backbone under a trained head), unvalidated for its own Dense(1000, relu) head
  experiment: headOnCachedFeatures(HEAD_RECIPES.frozenBackbone),
};

registerGraph(inceptionResNetV2Graph);
