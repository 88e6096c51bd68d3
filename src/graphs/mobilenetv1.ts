import { registerGraph, type GraphDefinition } from './graph.js';
import { HEAD_RECIPES, headOnCachedFeatures } from './recipes.js';

/** MobileNet v1 transfer learning: frozen ImageNet backbone (alpha 0.25 by default), softmax head. */
export const mobileNetV1Graph: GraphDefinition = {
  name: 'mobilenetv1',
  model: 'mobilenetv1',
  description: 'MobileNet v1 (alpha 0.25 by default) with a frozen ImageNet backbone and a softmax head',
  // the wider variants (0.5 … 1.0) have no offline weights here: they take the 0.25's recipe, which the bench could search
  experiment: headOnCachedFeatures(HEAD_RECIPES.mobilenetv1_025),
};

registerGraph(mobileNetV1Graph);
