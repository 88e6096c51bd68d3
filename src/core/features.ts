/**
 * One image's features from each member, side by side, each first scaled to L2 length `norm` when
 * given (so no member dominates by the scale of its features). The full pass and the training
 * features both go through here, so they are the same function of the members' outputs.
 */
export function concatFeatures(parts: readonly Float32Array[], norm?: number): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    let scale = 1;
    if (norm !== undefined) {
      let sum = 0;
      for (const v of part) sum += v * v;
      // the same epsilon as L2Normalization: an all-zero vector stays zero
      scale = norm / (Math.sqrt(sum) + 1e-12);
    }
    for (let d = 0; d < part.length; d++) out[at + d] = part[d]! * scale;
    at += part.length;
  }
  return out;
}
