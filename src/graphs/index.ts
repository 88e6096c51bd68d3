import { efficientNetGraphs } from './efficientnet.js';
import { registerGraph } from './graph.js';
import { inceptionResNetV2Graph } from './inceptionresnetv2.js';
import { mobileNetV1Graph } from './mobilenetv1.js';
import { mobileNetV2FineTuneGraph, mobileNetV2Graph } from './mobilenetv2.js';
import { squeezeNetGraph } from './squeezenet.js';
import { vgg19Graph } from './vgg19.js';

for (const graph of [vgg19Graph, inceptionResNetV2Graph, mobileNetV2Graph, mobileNetV2FineTuneGraph, mobileNetV1Graph, squeezeNetGraph, ...efficientNetGraphs]) registerGraph(graph);

export { BASE_OPTIONS, getGraph, listGraphs, registerGraph, type ExperimentOptions, type GraphDefinition, type Recipe } from './graph.js';
export { headOnCachedFeatures, headThenFineTune, trainEndToEnd } from './recipes.js';
export { experiment, experimentEvents, type RunContext } from './experiment.js';
export { SPEED_BATCH } from '../stages/full-pass.js';
export type { ExperimentHooks, Progress, RunEvent } from '../stages/events.js';
