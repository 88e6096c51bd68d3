import { registerGraph, type GraphDefinition } from './graph.js';
import { headOnCachedFeatures, VALIDATED_HEAD } from './recipes.js';

/** MobileNet v1 transfer learning: frozen ImageNet backbone (alpha 0.25 by default), softmax head. */
export const mobileNetV1Graph: GraphDefinition = {
  name: 'mobilenetv1',
  model: 'mobilenetv1',
  description: 'MobileNet v1 (alpha 0.25 by default) with a frozen ImageNet backbone and a softmax head',
  experiment: headOnCachedFeatures(VALIDATED_HEAD),
};

registerGraph(mobileNetV1Graph);
