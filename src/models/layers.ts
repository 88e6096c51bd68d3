import * as tfc from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-layers';

type Kwargs = Record<string, unknown>;
const single = (inputs: tfc.Tensor | tfc.Tensor[]) => (Array.isArray(inputs) ? inputs[0]! : inputs);

/** Keras' `CustomScaleLayer` of Inception-ResNet: `inputs[0] + inputs[1] * scale`. */
export class ScaledResidual extends tf.layers.Layer {
  static className = 'CustomScaleLayer';
  readonly scale: number;

  constructor(args: { scale: number; name?: string }) {
    super(args);
    this.scale = args.scale;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return (inputShape as tf.Shape[])[0]!;
  }

  override call(inputs: tfc.Tensor | tfc.Tensor[], _kwargs: Kwargs): tfc.Tensor {
    return tfc.tidy(() => {
      const [x, residual] = inputs as tfc.Tensor[];
      return tfc.add(x!, tfc.mul(residual!, this.scale));
    });
  }

  override getConfig(): tfc.serialization.ConfigDict {
    return { ...super.getConfig(), scale: this.scale };
  }
}

/**
 * Keras' `Normalization(axis=-1)` after `adapt`: `(x - mean) / max(sqrt(variance), 1e-7)`, with
 * `mean`, `variance` and `count` as non-trainable weights (so weight files load into it).
 */
export class Normalization extends tf.layers.Layer {
  static className = 'Normalization';
  private mean!: tf.LayerVariable;
  private variance!: tf.LayerVariable;

  constructor(args: { name?: string } = {}) {
    super(args);
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const channels = shape[shape.length - 1] as number;
    this.mean = this.addWeight('mean', [channels], 'float32', tf.initializers.zeros(), undefined, false);
    this.variance = this.addWeight('variance', [channels], 'float32', tf.initializers.ones(), undefined, false);
    this.addWeight('count', [], 'float32', tf.initializers.zeros(), undefined, false);
    this.built = true;
  }

  override call(inputs: tfc.Tensor | tfc.Tensor[], _kwargs: Kwargs): tfc.Tensor {
    return tfc.tidy(() => tfc.div(tfc.sub(single(inputs), this.mean.read()), tfc.maximum(tfc.sqrt(this.variance.read()), 1e-7)));
  }
}

/** Per-channel scaling without weights (Keras' `Rescaling` with a list of scales). */
export class ChannelScale extends tf.layers.Layer {
  static className = 'ChannelScale';
  readonly scales: number[];

  constructor(args: { scales: number[]; name?: string }) {
    super(args);
    this.scales = args.scales;
  }

  override call(inputs: tfc.Tensor | tfc.Tensor[], _kwargs: Kwargs): tfc.Tensor {
    return tfc.tidy(() => tfc.mul(single(inputs), tfc.tensor1d(this.scales)));
  }

  override getConfig(): tfc.serialization.ConfigDict {
    return { ...super.getConfig(), scales: this.scales };
  }
}

/**
 * `scale · x / ‖x‖` along the last axis, without weights. A layer class of its own (registered for
 * serialization), so a saved head keeps its normalisation (rxcnn's heads: `featureNorm`).
 */
export class L2Normalization extends tf.layers.Layer {
  static className = 'RxcnnL2Normalization';
  readonly scale: number;

  constructor(args: { scale: number; name?: string }) {
    super(args);
    if (!(args.scale > 0)) throw new Error(`feature norm must be a positive number, got ${args.scale}`);
    this.scale = args.scale;
  }

  override call(inputs: tfc.Tensor | tfc.Tensor[], _kwargs: Kwargs): tfc.Tensor {
    return tfc.tidy(() => {
      const x = single(inputs);
      // The epsilon keeps an all-zero vector (every relu dead) at zero instead of NaN.
      return tfc.mul(x, tfc.div(this.scale, tfc.add(tfc.norm(x, 'euclidean', -1, true), 1e-12)));
    });
  }

  override getConfig(): tfc.serialization.ConfigDict {
    return { ...super.getConfig(), scale: this.scale };
  }
}

for (const layer of [ScaledResidual, Normalization, ChannelScale, L2Normalization]) tfc.serialization.registerClass(layer);
