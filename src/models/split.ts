import * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';

/** A fine-tuned backbone cut in two where its unfrozen blocks begin. */
export interface BackboneSplit {
  /** The layer whose output is the cut: the frozen prefix ends there (what `exportOnnx`'s `upTo` takes). */
  cut: string;
  /** One image's activations at the cut, `[h, w, c]` (NHWC, as tfjs and the ONNX export's flattened output read them). */
  shape: number[];
  /**
   * Cut activations → the unfrozen blocks → pooling. Built from the backbone's own layer objects,
   * so it shares their weights: training it trains the backbone. It owns no tensors; never dispose
   * it (that would free the backbone's weights), the backbone's owner frees them.
   */
  top: LayersModel;
}

/** Why a backbone cannot be cut where its trainable layers begin (the stage then trains the whole network on images). */
export class UnsplittableError extends Error {}

/**
 * Cuts `backbone` at the input of its first layer with trainable weights: everything before runs
 * frozen (in inference mode it is a fixed function of the pixels, so any engine may compute it),
 * everything from there trains. Exactly one tensor may cross the cut — a residual connection
 * reaching over it would need two inputs — else, or when nothing is frozen, it throws an
 * {@link UnsplittableError}. Call it after the layers' `trainable` flags are set.
 */
export function splitBackbone(backbone: LayersModel): BackboneSplit {
  const first = backbone.layers.findIndex((l) => l.trainableWeights.length > 0);
  if (first < 0) throw new UnsplittableError(`${backbone.name} has no trainable layer to split off`);
  const frozen = new Set(backbone.layers.slice(0, first));
  // the backbone's own graph, walked back from its output: a layer reused elsewhere (an earlier split) has other nodes too
  const crossing = new Map<number, SymbolicTensor>();
  const seen = new Set<number>();
  const visit = (t: SymbolicTensor): void => {
    if (seen.has(t.id)) return;
    seen.add(t.id);
    if (frozen.has(t.sourceLayer)) crossing.set(t.id, t);
    else t.sourceLayer.inboundNodes[t.nodeIndex]!.inputTensors.forEach(visit);
  };
  backbone.outputs.forEach(visit);
  const cuts = [...crossing.values()];
  if (cuts.length !== 1) throw new UnsplittableError(`${backbone.name} cannot be cut before '${backbone.layers[first]!.name}': ${cuts.length} tensors cross there (${cuts.map((t) => t.sourceLayer.name).join(', ')})`);
  const cut = cuts[0]!;
  if (backbone.inputs.some((i) => i.id === cut.id)) throw new UnsplittableError(`every block of ${backbone.name} trains: there is no frozen prefix to split off`);
  const input = tfl.input({ shape: cut.shape.slice(1) as number[], name: `${cut.sourceLayer.name}_activations` });
  const built = new Map<number, SymbolicTensor>([[cut.id, input]]);
  const build = (t: SymbolicTensor): SymbolicTensor => {
    const done = built.get(t.id);
    if (done) return done;
    const node = t.sourceLayer.inboundNodes[t.nodeIndex]!;
    const inputs = node.inputTensors.map(build);
    const out = t.sourceLayer.apply(inputs.length === 1 ? inputs[0]! : inputs, t.callArgs) as SymbolicTensor | SymbolicTensor[];
    const result = Array.isArray(out) ? out[t.outputTensorIndex ?? 0]! : out;
    built.set(t.id, result);
    return result;
  };
  const top = tfl.model({ inputs: input, outputs: backbone.outputs.map(build), name: `${backbone.name}_from_${cut.sourceLayer.name}` });
  return { cut: cut.sourceLayer.name, shape: cut.shape.slice(1) as number[], top };
}
