import { mobileNetV2 } from './mobilenetv2.js';
import { registerModel } from './registry.js';

registerModel(mobileNetV2);

export { createModel, getModel, listModels, registerModel, type CreateModelOptions, type ModelDefinition } from './registry.js';
export { countParams, denseHead, disposeClassifier, type Classifier } from './classifier.js';
export type { Preprocessing } from './preprocessing.js';
