/** rxcnn's public API: operators, models, graphs and the backend switch. */
import './graphs/index.js';

export { useBackend, BACKEND_CHOICES, type ActiveBackend, type BackendChoice } from './backend.js';
export type { ClassInfo, Dataset, DecodedImage, ImageBatch, Predictions, Sample, Skip, Split, StepResult } from './core/types.js';
export { augment, type AugmentOptions } from './operators/augment.js';
export { batch } from './operators/batch.js';
export { decode, decodeImage, type DecodeOptions, type ResizeMode } from './operators/decode.js';
export { discover, type DiscoverOptions } from './operators/discover.js';
export { embed } from './operators/embed.js';
export { FeatureCache } from './features/cache.js';
export { measure, measureSource, Meter, type OperatorStats } from './operators/measure.js';
export { metrics, type Metrics } from './operators/metrics.js';
export { predict } from './operators/predict.js';
export { prefetch, type Prefetch } from './operators/prefetch.js';
export { manifestOf, parseProtocol, split, type Manifest, type Protocol } from './operators/split.js';
export { subset } from './operators/subset.js';
export { normalize, toTensor, type TensorBatch } from './operators/to-tensor.js';
export { balancedClassWeights, train, type TrainOptions } from './operators/train.js';
export { countParams, createModel, denseHead, disposeClassifier, listModels, registerModel, type Classifier, type ModelDefinition } from './models/index.js';
export { experiment, getGraph, listGraphs, registerGraph, type ExperimentOptions, type GraphDefinition } from './graphs/index.js';
export type { Report } from './report.js';
