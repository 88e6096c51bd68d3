import { registerGraph, type GraphDefinition } from './graph.js';
import { headOnCachedFeatures, headThenFineTune, VALIDATED_HEAD } from './recipes.js';

/** The study's MobileNetV2 transfer learning: frozen ImageNet backbone, softmax head, Adam. */
export const mobileNetV2Graph: GraphDefinition = {
  name: 'mobilenetv2',
  model: 'mobilenetv2',
  description: 'MobileNetV2 (alpha 0.5, embedded ImageNet weights) with a frozen backbone and a trained softmax head',
  experiment: headOnCachedFeatures(VALIDATED_HEAD),
};

/**
 * The Keras two-stage recipe on MobileNetV2: the head on cached features, then its last block
 * (Conv_1, from block 16's output computed on the inference engine) with it. Chosen on the
 * validation curve of Caltech-101 (`npm run bench -- two-stage`, README Accuracy): 1 block at 1e-4
 * rose every epoch; 2 and 4 blocks, and 3e-4 at any depth, stayed below it.
 */
export const mobileNetV2FineTuneGraph: GraphDefinition = {
  name: 'mobilenetv2-finetune',
  model: 'mobilenetv2',
  description: 'MobileNetV2: the head on cached features (the validated head setting, 30 epochs), then the last block fine-tuned with it on freshly augmented images at 1e-4 (up to 4 epochs, early-stopped on held-out training images)',
  experiment: headThenFineTune({ head: VALIDATED_HEAD, fineTune: { blocks: 1, epochs: 4, lr: 1e-4 } }),
};

registerGraph(mobileNetV2Graph);
registerGraph(mobileNetV2FineTuneGraph);
