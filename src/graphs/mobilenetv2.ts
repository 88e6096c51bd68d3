import type { GraphDefinition } from './graph.js';

/** The study's MobileNetV2 transfer learning: frozen ImageNet backbone, softmax head, Adam. */
export const mobileNetV2Graph: GraphDefinition = {
  name: 'mobilenetv2',
  model: 'mobilenetv2',
  description: 'MobileNetV2 (alpha 0.5, embedded ImageNet weights) with a frozen backbone and a trained softmax head',
  defaults: { epochs: 5, lr: 1e-3 },
};
