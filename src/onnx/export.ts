import * as tfl from '@tensorflow/tfjs-layers';
import type { SymbolicTensor } from '@tensorflow/tfjs-layers';
import onnxProto from 'onnx-proto';
import { affineOf, type Preprocessing } from '../models/preprocessing.js';

const { onnx } = onnxProto;

/**
 * Opset 13: every operator used here has its current semantics there (Clip's min/max and Pad's
 * pads as inputs, Softmax over one axis, ReduceL2 with an `axes` attribute), and ONNX Runtime 1.30
 * has optimised CPU kernels and fusions (Conv+Clip, Conv+Relu, NCHWc) for all of it.
 */
export const ONNX_OPSET = 13;
/** The IR version that goes with opset 13 (ONNX 1.8). */
const IR_VERSION = 7;

export interface OnnxExportOptions {
  /** How the model expects its 0…255 RGB input scaled; the exported graph does it itself. */
  preprocessing: Preprocessing;
  /** Export only the network up to (and including) this layer of `model`: the frozen bottom of a fine-tuned backbone. */
  upTo?: string;
  /** Append a softmax to the (2-D) output: a head's logits become probabilities. */
  softmax?: boolean;
  /** Name of the graph's output (`features`, or `probabilities` with `softmax`). */
  outputName?: string;
}

/** What an export gives: the serialized ModelProto and how to feed it. */
export interface OnnxModel {
  bytes: Uint8Array;
  /** `pixels`: uint8 `[batch, size, size, 3]` RGB, NHWC. */
  input: { name: string; shape: [number, number, number] };
  /** float32 `[batch, width]`: a 4-D last layer is flattened in NHWC order, as tfjs' output reads. */
  output: { name: string; width: number };
}

type LayerT = tfl.layers.Layer;
type NodeT = LayerT['inboundNodes'][number];
type Config = Record<string, unknown>;

/** A layer the exporter cannot map: one line naming it and its class. */
export class UnsupportedLayerError extends Error {
  constructor(layer: LayerT, why = 'is not supported by the ONNX export') {
    super(`layer '${layer.name}' (${layer.getClassName()}) ${why}`);
    this.name = 'UnsupportedLayerError';
  }
}

/**
 * A convolution whose weights are still open to change: a following batch-norm, per-channel affine
 * or residual scale is folded into them instead of running as nodes of its own.
 */
interface ConvRecord {
  /** `[out, in/group, kh, kw]`, ONNX order. */
  weights: Float32Array;
  bias: Float32Array;
  dims: number[];
  weightName: string;
  biasName: string;
  /** True while the convolution's output reaches nothing but the one layer that comes next. */
  foldable: boolean;
}

/**
 * A per-channel `x · scale + shift` on a 4-D value not emitted yet (the input's preprocessing, and
 * Rescaling/Normalization layers right after it): a following convolution takes it into its weights.
 */
interface PendingAffine {
  input: string;
  /** Channel c of the result is channel `order[c]` of `input` (the caffe models' BGR), or in order when null. */
  order: number[] | null;
  scale: Float64Array;
  shift: Float64Array;
  /** Nothing but the next layer reads it. */
  single: boolean;
}

/** A zero padding not emitted yet: a following convolution takes it into its own pads. */
interface PendingPad {
  input: string;
  /** [top, bottom, left, right] */
  pads: [number, number, number, number];
}

const weightOf = (layer: LayerT, suffix: string): Float32Array | null => {
  const variable = layer.weights.find((w) => w.originalName.split('/').pop() === suffix);
  return variable ? (variable.read().dataSync() as Float32Array) : null;
};

const requiredWeight = (layer: LayerT, suffix: string): Float32Array => {
  const values = weightOf(layer, suffix);
  if (!values) throw new UnsupportedLayerError(layer, `has no '${suffix}' weight`);
  return values;
};

const pair = (value: unknown): [number, number] => (Array.isArray(value) ? [value[0] as number, (value[1] ?? value[0]) as number] : [value as number, value as number]);

/** TensorFlow's 'same' padding along one axis: the odd pixel goes at the end. */
function samePads(size: number, kernel: number, stride: number, dilation: number): [number, number] {
  const effective = (kernel - 1) * dilation + 1;
  const total = Math.max((Math.ceil(size / stride) - 1) * stride + effective - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/** Keras NHWC axis → the NCHW axis it is stored on here (rank-2 tensors keep theirs). */
function onnxAxis(axis: number, rank: number, layer: LayerT): number {
  const positive = axis < 0 ? axis + rank : axis;
  if (rank === 2 && positive === 1) return 1;
  if (rank === 4) return [0, 2, 3, 1][positive]!;
  throw new UnsupportedLayerError(layer, `works on axis ${axis} of a rank-${rank} tensor, which the export does not map`);
}

/** Builds a graph node by node; every 4-D value is NCHW, every 2-D value `[batch, width]`. */
class GraphBuilder {
  readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  readonly initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  private readonly used = new Set<string>();
  readonly convs = new Map<string, ConvRecord>();
  readonly pending = new Map<string, PendingPad>();
  readonly affines = new Map<string, PendingAffine>();
  private readonly materialized = new Map<string, string>();

  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }

  floats(base: string, values: Float32Array | number[], dims: number[]): string {
    const data = values instanceof Float32Array ? values : Float32Array.from(values);
    const name = this.fresh(base);
    this.initializers.push(onnx.TensorProto.create({ name, dataType: onnx.TensorProto.DataType.FLOAT, dims, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) }));
    return name;
  }

  ints(base: string, values: number[]): string {
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    const name = this.fresh(base);
    this.initializers.push(onnx.TensorProto.create({ name, dataType: onnx.TensorProto.DataType.INT64, dims: [values.length], rawData: new Uint8Array(data.buffer) }));
    return name;
  }

  /** Adds a node; its output is named after `output` (made unique), or exactly `output` when `exact`. */
  node(op: string, inputs: string[], output: string, attributes: InstanceType<typeof onnx.AttributeProto>[] = [], exact = false): string {
    const name = exact ? output : this.fresh(output);
    this.nodes.push(onnx.NodeProto.create({ opType: op, input: inputs, output: [name], name, attribute: attributes }));
    return name;
  }

  /**
   * A value as a real tensor: a pending zero padding is emitted now (once). `forMaxPool`: ONNX
   * Runtime 1.30's PadFusion merges a Pad of +0.0 into a following MaxPool, whose own padding is
   * -inf, so windows of negative values near the border lose their zeros; padding with -0.0 (equal
   * to 0) keeps the Pad out of that fusion.
   */
  materialize(value: string, forMaxPool = false): string {
    const affine = this.affines.get(value);
    if (affine) {
      let done = this.materialized.get(value);
      if (!done) {
        const ordered = affine.order ? this.node('Gather', [affine.input, this.ints(`${value}_order`, affine.order)], `${value}_reordered`, [intAttr('axis', 1)]) : affine.input;
        done = this.emitAffine(ordered, Float32Array.from(affine.scale), Float32Array.from(affine.shift), 4, value);
        this.materialized.set(value, done);
      }
      return done;
    }
    const pad = this.pending.get(value);
    if (!pad) return value;
    const key = `${value}${forMaxPool ? ' (max-pool)' : ''}`;
    let done = this.materialized.get(key);
    if (!done) {
      const [top, bottom, left, right] = pad.pads;
      const inputs = [this.materialize(pad.input), this.ints(`${value}_pads`, [0, 0, top, left, 0, 0, bottom, right])];
      if (forMaxPool) inputs.push(this.floats(`${value}_negative_zero`, [-0], []));
      done = this.node('Pad', inputs, value);
      this.materialized.set(key, done);
    }
    return done;
  }

  /** Per-channel Mul and Add nodes (each left out when it would change nothing). */
  emitAffine(x: string, scale: Float32Array, shift: Float32Array, rank: number, name: string): string {
    const dims = rank === 4 ? [scale.length, 1, 1] : [scale.length];
    let y = x;
    const zeroShift = shift.every((s) => s === 0);
    if (!scale.every((s) => s === 1)) y = this.node('Mul', [y, this.floats(`${name}_scale`, scale, dims)], zeroShift ? name : `${name}_mul`);
    if (!zeroShift) y = this.node('Add', [y, this.floats(`${name}_shift`, shift, dims)], name);
    return y;
  }

  /** The convolution weights, as they stand after every fold. */
  finish(): void {
    for (const conv of this.convs.values()) {
      this.initializers.push(onnx.TensorProto.create({ name: conv.weightName, dataType: onnx.TensorProto.DataType.FLOAT, dims: conv.dims, rawData: new Uint8Array(conv.weights.buffer, conv.weights.byteOffset, conv.weights.byteLength) }));
      this.initializers.push(onnx.TensorProto.create({ name: conv.biasName, dataType: onnx.TensorProto.DataType.FLOAT, dims: [conv.bias.length], rawData: new Uint8Array(conv.bias.buffer, conv.bias.byteOffset, conv.bias.byteLength) }));
    }
  }
}

const intAttr = (name: string, i: number) => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i });
const intsAttr = (name: string, ints: number[]) => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INTS, ints });

const isModel = (layer: LayerT): layer is tfl.LayersModel => layer instanceof tfl.LayersModel;

/** The node that produced a symbolic tensor. */
const producer = (t: SymbolicTensor): NodeT => t.sourceLayer.inboundNodes[t.nodeIndex]!;

/** An input layer's node, which lists its own output as its input. */
const isSource = (node: NodeT) => node.inboundLayers.length === 0;

/** How many layer calls (and model outputs) read each symbolic tensor, over everything `model` computes. */
function countConsumers(model: tfl.LayersModel, counts = new Map<number, number>(), seen = new Set<NodeT>()): Map<number, number> {
  const bump = (t: SymbolicTensor) => counts.set(t.id, (counts.get(t.id) ?? 0) + 1);
  const visit = (t: SymbolicTensor): void => {
    const node = producer(t);
    if (seen.has(node) || isSource(node)) return;
    seen.add(node);
    for (const input of node.inputTensors) {
      bump(input);
      visit(input);
    }
    if (isModel(node.outboundLayer)) countConsumers(node.outboundLayer, counts, seen);
  };
  for (const output of model.outputs) {
    bump(output);
    visit(output);
  }
  return counts;
}

/** The ONNX graph of a tf.layers model, layer by layer. */
class Exporter {
  readonly g = new GraphBuilder();
  private readonly consumers: Map<number, number>;

  constructor(private readonly network: tfl.LayersModel) {
    this.consumers = countConsumers(network);
  }

  /** How many layers read the network's input. */
  inputReaders(): number {
    return this.consumers.get(this.network.inputs[0]!.id) ?? 0;
  }

  /** Emits `model` applied to the ONNX values `inputs`; returns the names of its outputs. */
  model(model: tfl.LayersModel, inputs: string[]): string[] {
    const env = new Map<number, string>();
    model.inputs.forEach((t, i) => env.set(t.id, inputs[i]!));
    // Iterative depth-first walk back from the outputs (Inception-ResNet-v2 is ~800 layers deep).
    const stack: SymbolicTensor[] = [...model.outputs];
    while (stack.length > 0) {
      const t = stack[stack.length - 1]!;
      if (env.has(t.id)) {
        stack.pop();
        continue;
      }
      const node = producer(t);
      if (isSource(node)) throw new Error(`model '${model.name}': input '${t.name}' is not one of the model's inputs`);
      const missing = node.inputTensors.filter((input) => !env.has(input.id));
      if (missing.length > 0) {
        stack.push(...missing);
        continue;
      }
      const outputs = this.layer(node, node.inputTensors.map((input) => env.get(input.id)!));
      node.outputTensors.forEach((output, i) => env.set(output.id, outputs[i]!));
      stack.pop();
    }
    return model.outputs.map((t) => env.get(t.id)!);
  }

  private layer(node: NodeT, inputs: string[]): string[] {
    const layer = node.outboundLayer;
    if (isModel(layer)) return this.model(layer, inputs);
    if (node.outputTensors.length !== 1) throw new UnsupportedLayerError(layer, 'has several outputs');
    return [this.single(layer, node, inputs)];
  }

  private single(layer: LayerT, node: NodeT, inputs: string[]): string {
    const config = layer.getConfig() as Config;
    const inShape = node.inputTensors[0]!.shape;
    const out = node.outputTensors[0]!;
    const rank = inShape.length;
    const g = this.g;
    const x = inputs[0]!;
    const requireRank = (...ranks: number[]) => {
      if (!ranks.includes(rank)) throw new UnsupportedLayerError(layer, `gets a rank-${rank} input; the export handles rank ${ranks.join(' or ')}`);
    };
    switch (layer.getClassName()) {
      case 'Conv2D':
      case 'DepthwiseConv2D':
      case 'SeparableConv2D':
        requireRank(4);
        return this.convolution(layer, config, node, x);
      case 'BatchNormalization': {
        const channels = inShape[rank - 1] as number;
        if (onnxAxis(config.axis as number, rank, layer) !== 1) throw new UnsupportedLayerError(layer, `normalises axis ${String(config.axis)}, not the channels`);
        const gamma = weightOf(layer, 'gamma') ?? new Float32Array(channels).fill(1);
        const beta = weightOf(layer, 'beta') ?? new Float32Array(channels);
        const mean = requiredWeight(layer, 'moving_mean');
        const variance = requiredWeight(layer, 'moving_variance');
        const epsilon = config.epsilon as number;
        const scale = gamma.map((gm, c) => gm / Math.sqrt(variance[c]! + epsilon));
        return this.affine(x, scale, beta.map((b, c) => b - mean[c]! * scale[c]!), rank, out, layer.name);
      }
      case 'ReLU': {
        const max = config.maxValue as number | null | undefined;
        return max === null || max === undefined ? g.node('Relu', [g.materialize(x)], layer.name) : this.clip(g.materialize(x), 0, max, layer.name);
      }
      case 'Activation':
        return this.activation(g.materialize(x), config.activation as string, layer);
      case 'Add':
      case 'Multiply': {
        if (node.inputTensors.some((t) => t.shape.length !== rank)) throw new UnsupportedLayerError(layer, 'mixes inputs of different ranks');
        const op = layer.getClassName() === 'Add' ? 'Add' : 'Mul';
        return inputs.slice(1).reduce((acc, input, i) => g.node(op, [g.materialize(acc), g.materialize(input)], i === inputs.length - 2 ? layer.name : `${layer.name}_${i}`), x);
      }
      case 'Concatenate':
        return g.node('Concat', inputs.map((i) => g.materialize(i)), layer.name, [intAttr('axis', onnxAxis(config.axis as number, rank, layer))]);
      case 'ZeroPadding2D': {
        requireRank(4);
        const [[top, bottom], [left, right]] = (config.padding as number[][]).map(pair);
        const name = g.fresh(layer.name);
        g.pending.set(name, { input: x, pads: [top!, bottom!, left!, right!] });
        return name;
      }
      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        requireRank(4);
        const kernel = pair(config.poolSize);
        const strides = pair(config.strides ?? config.poolSize);
        const pads = config.padding === 'same' ? [0, 1].map((a) => samePads(inShape[a + 1] as number, kernel[a]!, strides[a]!, 1)) : [[0, 0], [0, 0]];
        const attributes = [intsAttr('kernel_shape', kernel), intsAttr('strides', strides), intsAttr('pads', [pads[0]![0]!, pads[1]![0]!, pads[0]![1]!, pads[1]![1]!])];
        // TensorFlow averages over the window's pixels inside the image only (count_include_pad 0, ONNX's default).
        const max = layer.getClassName() === 'MaxPooling2D';
        return g.node(max ? 'MaxPool' : 'AveragePool', [g.materialize(x, max)], layer.name, attributes);
      }
      case 'GlobalAveragePooling2D':
      case 'GlobalMaxPooling2D': {
        requireRank(4);
        const pooled = g.node(layer.getClassName() === 'GlobalAveragePooling2D' ? 'GlobalAveragePool' : 'GlobalMaxPool', [g.materialize(x)], `${layer.name}_pool`);
        return g.node('Flatten', [pooled], layer.name, [intAttr('axis', 1)]);
      }
      case 'Dense': {
        requireRank(2);
        const kernel = requiredWeight(layer, 'kernel');
        const units = config.units as number;
        const bias = weightOf(layer, 'bias');
        const gemmInputs = [g.materialize(x), g.floats(`${layer.name}_kernel`, kernel, [kernel.length / units, units])];
        if (bias) gemmInputs.push(g.floats(`${layer.name}_bias`, bias, [units]));
        const y = g.node('Gemm', gemmInputs, config.activation === 'linear' ? layer.name : `${layer.name}_linear`);
        return this.activation(y, config.activation as string, layer);
      }
      case 'Dropout':
      case 'SpatialDropout2D':
      case 'GaussianNoise':
      case 'GaussianDropout': {
        // inference: the identity; a convolution before it stays open to folds only while one layer reads on
        const conv = g.convs.get(x);
        if (conv && this.consumers.get(out.id) !== 1) conv.foldable = false;
        return x;
      }
      case 'Reshape':
        return this.reshape(layer, g.materialize(x), inShape as number[], (config.targetShape as number[]).slice());
      case 'Flatten':
        return rank === 2 ? x : this.reshape(layer, g.materialize(x), inShape as number[], [-1]);
      case 'Rescaling': {
        const channels = inShape[rank - 1] as number;
        return this.affine(x, new Float32Array(channels).fill(config.scale as number), new Float32Array(channels).fill((config.offset as number | undefined) ?? 0), rank, out, layer.name);
      }
      case 'Normalization': {
        const mean = requiredWeight(layer, 'mean');
        const variance = requiredWeight(layer, 'variance');
        // the layer divides by max(sqrt(variance), 1e-7)
        const scale = variance.map((v) => 1 / Math.max(Math.sqrt(v), 1e-7));
        return this.affine(x, scale, mean.map((m, c) => -m * scale[c]!), rank, out, layer.name);
      }
      case 'ChannelScale': {
        const scales = Float32Array.from(config.scales as number[]);
        return this.affine(x, scales, new Float32Array(scales.length), rank, out, layer.name);
      }
      case 'CustomScaleLayer': {
        // x + residual · scale, the scale folded into the residual branch's last convolution when it can be
        const channels = inShape[rank - 1] as number;
        const residual = this.affine(inputs[1]!, new Float32Array(channels).fill(config.scale as number), new Float32Array(channels), rank, null, `${layer.name}_scaled`);
        return g.node('Add', [g.materialize(x), g.materialize(residual)], layer.name);
      }
      case 'RxcnnL2Normalization': {
        requireRank(2);
        const input = g.materialize(x);
        const norm = g.node('ReduceL2', [input], `${layer.name}_norm`, [intsAttr('axes', [1]), intAttr('keepdims', 1)]);
        const factor = g.node('Div', [g.floats(`${layer.name}_scale`, [config.scale as number], []), g.node('Add', [norm, g.floats(`${layer.name}_epsilon`, [1e-12], [])], `${layer.name}_norm_eps`)], `${layer.name}_factor`);
        return g.node('Mul', [input, factor], layer.name);
      }
      default:
        throw new UnsupportedLayerError(layer);
    }
  }

  private convolution(layer: LayerT, config: Config, node: NodeT, x: string): string {
    const g = this.g;
    const kind = layer.getClassName();
    const [kh, kw] = pair(config.kernelSize);
    const strides = pair(config.strides);
    const dilations = pair(config.dilationRate ?? 1);
    const inShape = node.inputTensors[0]!.shape as number[];
    // A zero padding right before a 'valid' convolution becomes part of the convolution's pads.
    const pad = config.padding === 'valid' ? g.pending.get(x) : undefined;
    const [top, bottom, left, right] = pad ? pad.pads : [0, 0, 0, 0];
    const [sameTop, sameBottom] = config.padding === 'same' ? samePads(inShape[1]!, kh, strides[0], dilations[0]) : [0, 0];
    const [sameLeft, sameRight] = config.padding === 'same' ? samePads(inShape[2]!, kw, strides[1], dilations[1]) : [0, 0];
    if (config.padding !== 'same' && config.padding !== 'valid') throw new UnsupportedLayerError(layer, `has padding '${String(config.padding)}'`);
    let pads = [top + sameTop, left + sameLeft, bottom + sameBottom, right + sameRight];
    const inChannels = inShape[3]!;
    const beforePad = pad ? pad.input : x;
    /**
     * The input's preprocessing (and layers like Rescaling right after it) folded into this
     * convolution's weights: exact where the convolution reads no padding, and with padding too when
     * every channel's padding value in pixel space, -shift/scale, is the same (127.5 for [-1, 1]
     * input): the pixels are padded with that instead of zeros. Saves two passes over the input.
     */
    const preAffine = kind === 'Conv2D' && ((config.groups as number | undefined) ?? 1) === 1 ? g.affines.get(beforePad) : undefined;
    const padValue = preAffine ? -preAffine.shift[0]! / preAffine.scale[0]! : 0;
    const foldInput =
      preAffine !== undefined &&
      preAffine.single &&
      (pad === undefined || this.consumers.get(node.inputTensors[0]!.id) === 1) &&
      preAffine.scale.every((v) => v !== 0) &&
      (pads.every((p) => p === 0) || preAffine.shift.every((v, c) => -v / preAffine.scale[c]! === padValue));
    let input: string;
    if (foldInput) {
      // padding zeros in pixel space is what the convolution's own pads do
      input = pads.every((p) => p === 0) || padValue === 0 ? preAffine.input : g.node('Pad', [preAffine.input, g.ints(`${layer.name}_input_pads`, [0, 0, pads[0]!, pads[1]!, 0, 0, pads[2]!, pads[3]!]), g.floats(`${layer.name}_input_pad_value`, [padValue], [])], `${layer.name}_input_padded`);
      if (padValue !== 0) pads = [0, 0, 0, 0];
    } else {
      input = pad ? g.materialize(pad.input) : g.materialize(x);
    }
    const foldPreprocessing = (weights: Float32Array, bias: Float32Array, perGroup: number) => {
      if (!foldInput) return;
      const perOutput = weights.length / bias.length;
      const window = perOutput / perGroup;
      for (let o = 0; o < bias.length; o++) {
        let extra = 0;
        const original = weights.slice(o * perOutput, (o + 1) * perOutput);
        for (let c = 0; c < perGroup; c++) {
          // the convolution now reads source channel order[c] where it read channel c
          const source = preAffine!.order ? preAffine!.order[c]! : c;
          for (let k = 0; k < window; k++) {
            extra += original[c * window + k]! * preAffine!.shift[c]!;
            weights[o * perOutput + source * window + k] = original[c * window + k]! * preAffine!.scale[c]!;
          }
        }
        bias[o] = bias[o]! + extra;
      }
    };
    const attributes = (group: number, kernel: [number, number], padsOf: number[], stridesOf: [number, number], dilationsOf: [number, number]) => [
      intsAttr('kernel_shape', kernel),
      intsAttr('strides', stridesOf),
      intsAttr('pads', padsOf),
      intsAttr('dilations', dilationsOf),
      intAttr('group', group),
    ];
    const out = node.outputTensors[0]!;
    const activation = config.activation as string;
    const emit = (input: string, weights: Float32Array, dims: number[], bias: Float32Array, group: number, kernel: [number, number], padsOf: number[], stridesOf: [number, number], dilationsOf: [number, number], name: string, foldable: boolean): string => {
      const weightName = g.fresh(`${name}_W`);
      const biasName = g.fresh(`${name}_B`);
      const y = g.node('Conv', [input, weightName, biasName], name, attributes(group, kernel, padsOf, stridesOf, dilationsOf));
      g.convs.set(y, { weights, bias, dims, weightName, biasName, foldable });
      return y;
    };
    const linear = activation === 'linear';
    const foldable = linear && this.consumers.get(out.id) === 1;
    const name = linear ? layer.name : `${layer.name}_linear`;
    let y: string;
    if (kind === 'Conv2D') {
      const kernel = requiredWeight(layer, 'kernel');
      const filters = config.filters as number;
      const groups = (config.groups as number | undefined) ?? 1;
      const perGroup = inChannels / groups;
      const weights = new Float32Array(kernel.length);
      // Keras [kh, kw, in, out] → ONNX [out, in, kh, kw]
      for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) for (let c = 0; c < perGroup; c++) for (let o = 0; o < filters; o++) weights[((o * perGroup + c) * kh + i) * kw + j] = kernel[((i * kw + j) * perGroup + c) * filters + o]!;
      const bias = weightOf(layer, 'bias')?.slice() ?? new Float32Array(filters);
      foldPreprocessing(weights, bias, perGroup);
      y = emit(input, weights, [filters, perGroup, kh, kw], bias, groups, [kh, kw], pads, strides, dilations, name, foldable);
    } else {
      const depthwise = requiredWeight(layer, 'depthwise_kernel');
      const multiplier = depthwise.length / (kh * kw * inChannels);
      const outDepthwise = inChannels * multiplier;
      const weights = new Float32Array(depthwise.length);
      // Keras [kh, kw, in, m] → ONNX [in·m, 1, kh, kw]: output channel c·m + k, as TensorFlow orders it
      for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) for (let c = 0; c < inChannels; c++) for (let k = 0; k < multiplier; k++) weights[((c * multiplier + k) * kh + i) * kw + j] = depthwise[((i * kw + j) * inChannels + c) * multiplier + k]!;
      if (kind === 'DepthwiseConv2D') {
        const bias = weightOf(layer, 'bias')?.slice() ?? new Float32Array(outDepthwise);
        y = emit(input, weights, [outDepthwise, 1, kh, kw], bias, inChannels, [kh, kw], pads, strides, dilations, name, foldable);
      } else {
        // separable: the depthwise part, then a 1×1 convolution that carries the bias
        const d = emit(input, weights, [outDepthwise, 1, kh, kw], new Float32Array(outDepthwise), inChannels, [kh, kw], pads, strides, dilations, `${layer.name}_depthwise`, false);
        const pointwise = requiredWeight(layer, 'pointwise_kernel');
        const filters = config.filters as number;
        const pw = new Float32Array(pointwise.length);
        for (let c = 0; c < outDepthwise; c++) for (let o = 0; o < filters; o++) pw[o * outDepthwise + c] = pointwise[c * filters + o]!;
        const bias = weightOf(layer, 'bias')?.slice() ?? new Float32Array(filters);
        y = emit(d, pw, [filters, outDepthwise, 1, 1], bias, 1, [1, 1], [0, 0, 0, 0], [1, 1], [1, 1], name, foldable);
      }
    }
    return this.activation(y, activation, layer);
  }

  /**
   * Per-channel `x · scale + shift`: folded into the convolution that produced `x` when nothing else
   * reads its output; else, on a 4-D layer output, left pending for the next layer (a convolution
   * folds it into its weights, anything else emits it); else Mul and Add nodes. `out` is the
   * symbolic tensor the result stands for (null: an internal value), so a fold stays open only
   * while that too has one reader.
   */
  private affine(x: string, scale: Float32Array, shift: Float32Array, rank: number, out: SymbolicTensor | null, name: string): string {
    const g = this.g;
    const conv = g.convs.get(x);
    if (conv?.foldable) {
      const perOutput = conv.weights.length / conv.bias.length;
      for (let o = 0; o < conv.bias.length; o++) {
        for (let k = o * perOutput; k < (o + 1) * perOutput; k++) conv.weights[k]! *= scale[o]!;
        conv.bias[o] = conv.bias[o]! * scale[o]! + shift[o]!;
      }
      conv.foldable = out !== null && this.consumers.get(out.id) === 1;
      return x;
    }
    if (rank === 4 && out !== null) {
      // left pending for the next layer: a convolution takes it into its weights; consecutive ones compose
      const pending = g.affines.get(x);
      const before = pending?.single ? pending : { input: g.materialize(x), order: null, scale: new Float64Array(scale.length).fill(1), shift: new Float64Array(scale.length) };
      const composed = g.fresh(name);
      g.affines.set(composed, {
        input: before.input,
        order: before.order,
        scale: before.scale.map((a, c) => a * scale[c]!),
        shift: before.shift.map((b, c) => b * scale[c]! + shift[c]!),
        single: this.consumers.get(out.id) === 1,
      });
      return composed;
    }
    return g.emitAffine(g.materialize(x), scale, shift, rank, name);
  }

  private clip(x: string, min: number, max: number, name: string): string {
    return this.g.node('Clip', [x, this.g.floats(`${name}_min`, [min], []), this.g.floats(`${name}_max`, [max], [])], name);
  }

  private activation(x: string, activation: string, layer: LayerT): string {
    const g = this.g;
    const name = layer.name;
    switch (activation) {
      case 'linear':
        return x;
      case 'relu':
        return g.node('Relu', [x], name);
      case 'relu6':
        return this.clip(x, 0, 6, name);
      case 'sigmoid':
        return g.node('Sigmoid', [x], name);
      case 'tanh':
        return g.node('Tanh', [x], name);
      case 'elu':
        return g.node('Elu', [x], name);
      case 'selu':
        return g.node('Selu', [x], name);
      case 'softplus':
        return g.node('Softplus', [x], name);
      case 'swish':
        return g.node('Mul', [x, g.node('Sigmoid', [x], `${name}_sigmoid`)], name);
      case 'softmax':
        // Keras' last axis: the channels, axis 1 of NCHW and of [batch, width] alike
        return g.node('Softmax', [x], name, [intAttr('axis', 1)]);
      default:
        throw new UnsupportedLayerError(layer, `has activation '${activation}', which the export does not map`);
    }
  }

  /**
   * Keras reshapes in NHWC order. With 1×1 spatial dims NCHW holds the same order, so the common
   * cases (squeeze-excite's [c] → [1, 1, c], a 1×1 conv top back to [c]) are one Reshape; others
   * transpose to NHWC and back around it.
   */
  private reshape(layer: LayerT, x: string, inShape: number[], target: number[]): string {
    const g = this.g;
    const rank = inShape.length;
    if (target.length !== 1 && target.length !== 3) throw new UnsupportedLayerError(layer, `reshapes to rank ${target.length + 1}; the export handles rank 2 or 4`);
    const spatialOne = (shape: number[]) => shape.length === 4 && shape[1] === 1 && shape[2] === 1;
    const nhwc = rank === 4 && !spatialOne(inShape) ? g.node('Transpose', [x], `${layer.name}_nhwc`, [intsAttr('perm', [0, 2, 3, 1])]) : x;
    if (target.length === 1) return g.node('Reshape', [nhwc, g.ints(`${layer.name}_shape`, [0, target[0]!])], layer.name);
    const [h, w, c] = target as [number, number, number];
    if (h === 1 && w === 1) return g.node('Reshape', [nhwc, g.ints(`${layer.name}_shape`, [0, c, 1, 1])], layer.name);
    const reshaped = g.node('Reshape', [nhwc, g.ints(`${layer.name}_shape`, [0, h, w, c])], `${layer.name}_nhwc_out`);
    return g.node('Transpose', [reshaped], layer.name, [intsAttr('perm', [0, 3, 1, 2])]);
  }
}

/**
 * A sub-model of `model` ending at its layer `name` (sharing its weights; nothing to dispose). The
 * layer may also be one of a nested model that reads `model`'s own input: a saved classifier's
 * backbone.
 */
/**
 * `model` up to (and including) layer `name`, found in it or in a model it applies to its input
 * (a classifier's backbone). It shares `model`'s layers and owns no tensors: never dispose it.
 */
export function prefixOf(model: tfl.LayersModel, name: string): tfl.LayersModel {
  const owner = [model, ...model.layers.filter((l): l is tfl.LayersModel => isModel(l) && l.inboundNodes.some((n) => n.inputTensors[0]?.id === model.inputs[0]!.id))].find((m) =>
    m.layers.some((l) => l.name === name),
  );
  if (!owner) throw new Error(`${model.name} has no layer '${name}'`);
  return tfl.model({ inputs: owner.inputs, outputs: owner.getLayer(name).output as SymbolicTensor, name: `${model.name}_to_${name}` });
}

/**
 * Exports a tf.layers model (a zoo backbone, a saved classifier, or a prefix of either) to ONNX:
 * uint8 NHWC pixels in, the model's preprocessing done inside (cast, channel order, scale and
 * offset, then NCHW), float32 `[batch, width]` out. Batch-norms and per-channel scales are folded
 * into the convolution before them where nothing else reads its output; a zero padding before a
 * 'valid' convolution becomes that convolution's pads. A layer it cannot map throws an
 * {@link UnsupportedLayerError}. Reads the weights; allocates no tensors.
 */
export function exportOnnx(model: tfl.LayersModel, options: OnnxExportOptions): OnnxModel {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) throw new Error(`ONNX export needs a model with one input and one output; ${model.name} has ${model.inputs.length} and ${model.outputs.length}`);
  const network = options.upTo ? prefixOf(model, options.upTo) : model;
  const [, height, width, channels] = network.inputs[0]!.shape as number[];
  if (channels !== 3 || !height || !width) throw new Error(`ONNX export needs an RGB image input of fixed size, ${model.name} takes [${network.inputs[0]!.shape.join(', ')}]`);
  const exporter = new Exporter(network);
  const g = exporter.g;
  const inputName = g.fresh('pixels');
  const outputName = g.fresh(options.outputName ?? (options.softmax ? 'probabilities' : 'features'));
  const { scale, offset, bgr } = affineOf(options.preprocessing);
  // to NCHW while still bytes: a quarter of the memory traffic of transposing floats
  let x = g.node('Transpose', [inputName], 'pixels_nchw', [intsAttr('perm', [0, 3, 1, 2])]);
  x = g.node('Cast', [x], 'pixels_float', [intAttr('to', onnx.TensorProto.DataType.FLOAT)]);
  if (bgr || scale.some((s) => s !== 1) || offset.some((o) => o !== 0)) {
    // pending: a first convolution takes the channel order, scale and offset into its weights
    const preprocessed = g.fresh('pixels_preprocessed');
    g.affines.set(preprocessed, { input: x, order: bgr ? [2, 1, 0] : null, scale: Float64Array.from(scale), shift: Float64Array.from(offset), single: exporter.inputReaders() === 1 });
    x = preprocessed;
  }
  let y = g.materialize(exporter.model(network, [x])[0]!);
  const outShape = network.outputs[0]!.shape as number[];
  if (outShape.length === 4) y = g.node('Flatten', [g.node('Transpose', [y], 'output_nhwc', [intsAttr('perm', [0, 2, 3, 1])])], 'output_flat', [intAttr('axis', 1)]);
  else if (outShape.length !== 2) throw new Error(`ONNX export handles rank-2 and rank-4 outputs, ${network.name} gives rank ${outShape.length}`);
  if (options.softmax) {
    if (outShape.length !== 2) throw new Error('softmax needs a rank-2 output (logits)');
    y = g.node('Softmax', [y], 'softmax', [intAttr('axis', 1)]);
  }
  g.node('Identity', [y], outputName, [], true);
  g.finish();
  const outWidth = outShape.slice(1).reduce((a, b) => a * b, 1);
  const tensorType = (elemType: number, dims: Array<number | string>) =>
    onnx.TypeProto.create({ tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } });
  const graph = onnx.GraphProto.create({
    name: network.name,
    node: g.nodes,
    initializer: g.initializers,
    input: [onnx.ValueInfoProto.create({ name: inputName, type: tensorType(onnx.TensorProto.DataType.UINT8, ['batch', height, width, 3]) })],
    output: [onnx.ValueInfoProto.create({ name: outputName, type: tensorType(onnx.TensorProto.DataType.FLOAT, ['batch', outWidth]) })],
  });
  const proto = onnx.ModelProto.create({ irVersion: IR_VERSION, producerName: 'rxcnn', opsetImport: [{ domain: '', version: ONNX_OPSET }], graph });
  return { bytes: onnx.ModelProto.encode(proto).finish(), input: { name: inputName, shape: [height, width, 3] }, output: { name: outputName, width: outWidth } };
}
