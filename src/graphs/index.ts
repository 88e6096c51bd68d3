import { efficientNetGraphs } from './efficientnet.js';
import { registerGraph } from './graph.js';
import { inceptionResNetV2Graph } from './inceptionresnetv2.js';
import { mobileNetV1Graph } from './mobilenetv1.js';
import { mobileNetV2Graph } from './mobilenetv2.js';
import { squeezeNetGraph } from './squeezenet.js';
import { vgg19Graph } from './vgg19.js';

for (const graph of [vgg19Graph, inceptionResNetV2Graph, mobileNetV2Graph, mobileNetV1Graph, squeezeNetGraph, ...efficientNetGraphs]) registerGraph(graph);

export { BASE_OPTIONS, getGraph, listGraphs, registerGraph, type ExperimentOptions, type GraphDefinition } from './graph.js';
export { experiment, SPEED_BATCH, type ExperimentHooks, type Progress } from './experiment.js';
