import { registerGraph } from './graph.js';
import { mobileNetV2Graph } from './mobilenetv2.js';

registerGraph(mobileNetV2Graph);

export { BASE_OPTIONS, getGraph, listGraphs, registerGraph, type ExperimentOptions, type GraphDefinition } from './graph.js';
export { experiment, SPEED_BATCH, type ExperimentHooks, type Progress } from './experiment.js';
