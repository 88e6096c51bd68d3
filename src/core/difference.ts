/**
 * How far `actual` is from `reference`, relative to the reference's scale: max |a − r| / max |r|
 * (the measure the ONNX export is held to against tfjs). `scale` is returned too, so a caller can
 * refuse an all-zero reference, against which any difference would read as zero.
 */
export function relativeDifference(reference: ArrayLike<number>, actual: ArrayLike<number>): { relative: number; scale: number } {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < reference.length; i++) {
    diff = Math.max(diff, Math.abs(reference[i]! - actual[i]!));
    scale = Math.max(scale, Math.abs(reference[i]!));
  }
  return { relative: scale > 0 ? diff / scale : diff, scale };
}
