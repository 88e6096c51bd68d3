// Each architecture's file registers itself (and its variants) when imported.
import './efficientnet.js';
import './inception-resnet-v2.js';
import './mobilenet.js';
import './mobilenetv2.js';
import './squeezenet.js';
import './vgg19.js';

export { createModel, transferHead } from './create.js';
export { getModel, getVariant, listModels, listVariants, registerModel, variantName, type BuildOptions, type CreateModelOptions, type ModelDefinition, type ModelVariant } from './registry.js';
export { countParams, denseHead, disposeClassifier, type Classifier } from './classifier.js';
export type { Preprocessing } from './preprocessing.js';
export { splitBackbone, UnsplittableError, type BackboneSplit } from './split.js';
export { concatFeatures, createEnsemble, ensembleHead, ENSEMBLE_MODEL, isEnsemble, type EnsembleClassifier } from './ensemble.js';
