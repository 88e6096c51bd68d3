import { efficientNetDefinitions } from './efficientnet.js';
import { inceptionResNetV2Definition } from './inception-resnet-v2.js';
import { mobileNetDefinition } from './mobilenet.js';
import { mobileNetV2Definition } from './mobilenetv2.js';
import { registerModel } from './registry.js';
import { squeezeNetDefinition } from './squeezenet.js';
import { vgg19Definition } from './vgg19.js';

for (const definition of [vgg19Definition, inceptionResNetV2Definition, mobileNetV2Definition, mobileNetDefinition, squeezeNetDefinition, ...efficientNetDefinitions]) {
  registerModel(definition);
}

export { createModel } from './create.js';
export { getModel, listModels, registerModel, type BuildOptions, type CreateModelOptions, type ModelDefinition } from './registry.js';
export { countParams, denseHead, disposeClassifier, type Classifier } from './classifier.js';
export type { Preprocessing } from './preprocessing.js';
