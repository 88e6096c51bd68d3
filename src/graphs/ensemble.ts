import { registerGraph, type GraphDefinition } from './graph.js';
import { ENSEMBLE_MODEL } from '../models/ensemble.js';
import { HEAD_RECIPES, headOnCachedFeatures } from './recipes.js';

/**
 * One softmax head on the concatenated cached features of several frozen backbones (`--members`;
 * by default the four with offline ImageNet weights), its head recipe chosen by the recipe bench
 * (`HEAD_RECIPES.ensemble`) for these four members.
 */
export const ensembleGraph: GraphDefinition = {
  name: 'ensemble',
  model: ENSEMBLE_MODEL,
  description: 'one softmax head on the concatenated cached features of several frozen backbones (--members a,b,…)',
  experiment: headOnCachedFeatures({ ...HEAD_RECIPES.ensemble, members: ['mobilenetv2_050', 'mobilenetv2_035', 'squeezenet', 'mobilenetv1_025'] }),
};

registerGraph(ensembleGraph);
