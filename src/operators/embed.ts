import { concatMap, type OperatorFunction } from 'rxjs';
import type { FeatureBatch, ImageBatch } from '../core/types.js';
import type { InferenceEngine } from '../engines/engine.js';
import { TfjsEngine } from '../engines/tfjs.js';
import type { Classifier } from '../models/classifier.js';

/**
 * Frozen-backbone features of every image batch, as plain arrays, computed by `engine` (one opened
 * on the backbone, see `openEngine`); without one, on this thread.
 */
export function embed(classifier: Classifier, engine?: InferenceEngine): OperatorFunction<ImageBatch, FeatureBatch> {
  if (!classifier.backbone) throw new Error(`${classifier.name} has no frozen backbone to compute features with`);
  const computing = engine ?? new TfjsEngine(classifier.backbone, classifier.preprocessing);
  return concatMap(async (batch) => {
    const { values, shape } = await computing.run(batch);
    return { features: values, shape, y: batch.y, paths: batch.paths };
  });
}
