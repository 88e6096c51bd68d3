/** The shapes that flow between operators. */

/** One class of a folder-per-class dataset. `id` is the folder name, `name` its display name. */
export interface ClassInfo {
  id: string;
  name: string;
  index: number;
}

/** An image file with its label index (into `Dataset.classes`). */
export interface Sample {
  path: string;
  label: number;
}

/** A file passed over, and why. */
export interface Skip {
  path: string;
  reason: string;
}

export interface Dataset {
  root: string;
  classes: ClassInfo[];
  samples: Sample[];
  skipped: Skip[];
}

/** A dataset divided for an experiment; `manifest` records which file went where. */
export interface Split {
  protocol: string;
  seed: number;
  classes: ClassInfo[];
  train: Sample[];
  test: Sample[];
  skipped: Skip[];
  roots: { train: string; test: string };
  /** Classes with too few images for the protocol (per-class:N needs N+1). */
  shortClasses: Array<{ id: string; images: number }>;
}

/** An 8-bit RGB image, row-major HWC. */
export interface DecodedImage extends Sample {
  width: number;
  height: number;
  pixels: Uint8Array;
}

/** A batch of equally sized images, packed NHWC, with their labels and source paths. */
export interface ImageBatch {
  x: Uint8Array;
  shape: [number, number, number, number];
  y: Int32Array;
  paths: string[];
}

/** Backbone features of a batch of images (row-major N×D), with their labels and source paths. */
export interface FeatureBatch {
  features: Float32Array;
  shape: [number, number];
  y: Int32Array;
  paths: string[];
}

/** What train and predict accept: images (run through the backbone) or features already computed. */
export type Batch = ImageBatch | FeatureBatch;

/** The per-image outcome of a forward pass: class probabilities (row-major, N×classes). */
export interface Predictions {
  probs: Float32Array;
  labels: Int32Array;
  paths: string[];
  classes: number;
  /** Sum over the batch of the cross-entropy loss. */
  lossSum: number;
}

/** What one optimisation step on one batch gives back. */
export interface StepResult extends Predictions {
  step: number;
}
