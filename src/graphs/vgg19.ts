import { registerGraph, type GraphDefinition } from './graph.js';
import { trainEndToEnd } from './recipes.js';

/** The study's VGG-19: the whole network trained from scratch, Adam. */
export const vgg19Graph: GraphDefinition = {
  name: 'vgg19',
  model: 'vgg19',
  description: 'VGG-19 trained from scratch (all 143M parameters; needs a backend with convolution gradients)',
  experiment: trainEndToEnd({ epochs: 30, lr: 1e-4, weights: 'none' }),
};

registerGraph(vgg19Graph);
