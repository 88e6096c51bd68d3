import { concatMap, defer, from, type Observable, type OperatorFunction } from 'rxjs';
import type { FeatureBatch, ImageBatch } from '../core/types.js';
import { engineUsed, type EngineUsed, type InferenceEngine } from '../engines/engine.js';
import type { Classifier } from '../models/classifier.js';
import { splitBackbone } from '../models/split.js';
import { embed } from '../operators/embed.js';
import { measure, type Meter } from '../operators/measure.js';
import { countImages } from './feed.js';

/**
 * A fine-tuning stage's network cut where its trainable blocks begin: the frozen prefix computed
 * by an inference engine (ONNX Runtime when it loads), so only the top — cut activations → the
 * unfrozen blocks → pooling → head — runs forward and backward on tfjs. The top shares the
 * classifier's weights, so what it trains is the classifier's, and checkpoints, the best weights
 * and the saved model need nothing of their own. The engine opens at first use (its export time
 * counts in the first epoch) and is released by {@link close}.
 */
export class SplitNetwork {
  /** The layer whose output is the cut. */
  readonly cut: string;
  /** The classifier the steps run: its trainable top and head, fed activations at the cut. */
  readonly network: Classifier;
  private engine: Promise<InferenceEngine> | null = null;
  private used: EngineUsed | null = null;

  /** `open` opens an engine on the classifier's backbone up to the cut (`openEngine`'s `upTo`). Call after the stage's `trainable` flags are set. */
  constructor(
    private readonly model: Classifier,
    private readonly open: (cut: string) => Promise<InferenceEngine>,
  ) {
    const split = splitBackbone(model.backbone!);
    this.cut = split.cut;
    this.network = { ...model, backbone: split.top, cut: split.cut };
  }

  /** Which engine computes the prefix, once it has opened. */
  get prefixEngine(): EngineUsed | null {
    return this.used;
  }

  /** Image batches → their activations at the cut (the prefix in inference mode), as the top's feature batches. */
  activations(meter?: Meter): OperatorFunction<ImageBatch, FeatureBatch> {
    return (batches: Observable<ImageBatch>) =>
      defer(() => from(this.opened())).pipe(
        concatMap((engine) => {
          const prefix = embed(this.model, engine);
          return batches.pipe(meter ? measure(meter, 'prefix', prefix, countImages) : prefix);
        }),
      );
  }

  private opened(): Promise<InferenceEngine> {
    this.engine ??= this.open(this.cut).then((engine) => ((this.used = engineUsed(engine)), engine));
    return this.engine;
  }

  /** Releases the engine (a native session, worker threads); the top's weights are the classifier's. Idempotent. */
  async close(): Promise<void> {
    const engine = this.engine;
    this.engine = null;
    await (await engine?.catch(() => null))?.dispose();
  }
}
