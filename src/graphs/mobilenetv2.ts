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

/**
 * The Keras two-stage recipe on MobileNetV2: the head on cached features, then its last block
 * (Conv_1, from block 16's output computed on the inference engine) with it. Chosen on the
 * validation curve of Caltech-101 (`npm run bench -- two-stage`, README Accuracy): 1 block at 1e-4
 * rose every epoch; 2 and 4 blocks, and 3e-4 at any depth, stayed below it.
 */
export const mobileNetV2FineTuneGraph: GraphDefinition = {
  name: 'mobilenetv2-finetune',
  model: 'mobilenetv2',
  description: 'MobileNetV2: the head on cached features (30 epochs, features at L2 length 10), then the last block fine-tuned with it on freshly augmented images at 1e-4 (up to 4 epochs, early-stopped on held-out training images)',
  // the head the validation curve was measured from (the hand-chosen setting; the recipe bench's
  // MobileNetV2-0.5 winner came later and was not curved): a stage 2 is validated with its stage 1
  experiment: headThenFineTune({ head: { epochs: 30, lr: 1e-3, l2: 1e-4, featureNorm: 10, classWeights: 'balanced' }, fineTune: { blocks: 1, epochs: 4, lr: 1e-4 } }),
};

registerGraph(mobileNetV2Graph);
registerGraph(mobileNetV2FineTuneGraph);
