// Each architecture's graph file registers its graphs when imported; a model variant
// (`mobilenetv2_035`) runs its architecture's graph (see getGraph).
import './efficientnet.js';
import './ensemble.js';
import './inceptionresnetv2.js';
import './mobilenetv1.js';
import './mobilenetv2.js';
import './squeezenet.js';
import './vgg19.js';

export { BASE_OPTIONS, getGraph, listGraphs, recipeOf, registerGraph, type ExperimentOptions, type GraphDefinition, type Recipe } from './graph.js';
export { HEAD_RECIPES, headOnCachedFeatures, headThenFineTune, trainEndToEnd, type HeadRecipe } from './recipes.js';
export { experiment, experimentEvents, type RunContext } from './experiment.js';
export { SPEED_BATCH } from '../stages/full-pass.js';
export type { ExperimentHooks, Progress, RunEvent } from '../stages/events.js';
