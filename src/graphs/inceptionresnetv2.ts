import { registerGraph, type GraphDefinition } from './graph.js';
import { headOnCachedFeatures, VALIDATED_HEAD } from './recipes.js';

/** The study's best model: Inception-ResNet-v2, frozen ImageNet backbone, Dense(1000, relu) + softmax head. */
export const inceptionResNetV2Graph: GraphDefinition = {
  name: 'inceptionresnetv2',
  model: 'inceptionresnetv2',
  description: 'Inception-ResNet-v2 with a frozen ImageNet backbone and a Dense(1000, relu) + softmax head',
  experiment: headOnCachedFeatures(VALIDATED_HEAD),
};

registerGraph(inceptionResNetV2Graph);
