import { registerGraph, type GraphDefinition } from './graph.js';
import { headOnCachedFeatures, headThenFineTune, VALIDATED_HEAD } from './recipes.js';

/** The study's MobileNetV2 transfer learning: frozen ImageNet backbone, softmax head, Adam. */
export const mobileNetV2Graph: GraphDefinition = {
  name: 'mobilenetv2',
  model: 'mobilenetv2',
  description: 'MobileNetV2 (alpha 0.5, embedded ImageNet weights) with a frozen backbone and a trained softmax head',
  experiment: headOnCachedFeatures(VALIDATED_HEAD),
};

/** The Keras two-stage recipe on MobileNetV2: the head on cached features, then its top two blocks with it. */
export const mobileNetV2FineTuneGraph: GraphDefinition = {
  name: 'mobilenetv2-finetune',
  model: 'mobilenetv2',
  description: 'MobileNetV2: the head on cached features (the validated head setting, 30 epochs), then the last 2 blocks fine-tuned with it on augmented images at 1e-4 (3 epochs)',
  experiment: headThenFineTune({ head: VALIDATED_HEAD, fineTune: { blocks: 2, epochs: 3, lr: 1e-4 } }),
};

registerGraph(mobileNetV2Graph);
registerGraph(mobileNetV2FineTuneGraph);
