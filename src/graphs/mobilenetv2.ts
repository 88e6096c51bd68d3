import { registerGraph, type GraphDefinition } from './graph.js';
import { HEAD_RECIPES, headOnCachedFeatures, headThenFineTune } from './recipes.js';

/** The study's MobileNetV2 transfer learning: frozen ImageNet backbone, softmax head, Adam. */
export const mobileNetV2Graph: GraphDefinition = {
  name: 'mobilenetv2',
  model: 'mobilenetv2',
  description: 'MobileNetV2 (alpha 0.5, embedded ImageNet weights) with a frozen backbone and a trained softmax head',
  experiment: headOnCachedFeatures(HEAD_RECIPES.mobilenetv2_050),
  // the widths without offline weights here (0.75, 1.0, 1.3, 1.4) take the 0.5's recipe: the bench could not search them
  variants: { mobilenetv2_035: headOnCachedFeatures(HEAD_RECIPES.mobilenetv2_035) },
};

/** The Keras two-stage recipe on MobileNetV2: the head on cached features, then its top two blocks with it. */
export const mobileNetV2FineTuneGraph: GraphDefinition = {
  name: 'mobilenetv2-finetune',
  model: 'mobilenetv2',
  description: "MobileNetV2: the head on cached features (MobileNetV2-0.5's recipe), then the last 2 blocks fine-tuned with it on augmented images at 1e-4 (3 epochs)",
  experiment: headThenFineTune({ head: HEAD_RECIPES.mobilenetv2_050, fineTune: { blocks: 2, epochs: 3, lr: 1e-4 } }),
};

registerGraph(mobileNetV2Graph);
registerGraph(mobileNetV2FineTuneGraph);
