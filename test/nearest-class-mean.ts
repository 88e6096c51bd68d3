/** Leave-one-out nearest-class-mean accuracy (cosine similarity) of feature vectors. */
export function nearestClassMean(vectors: Float32Array[], labels: number[]): number {
  const unit = vectors.map((v) => {
    const norm = Math.hypot(...v) || 1;
    return v.map((x) => x / norm);
  });
  const dim = unit[0]!.length;
  const classes = Math.max(...labels) + 1;
  const sums = Array.from({ length: classes }, () => new Float64Array(dim));
  const counts = new Array<number>(classes).fill(0);
  unit.forEach((v, i) => {
    counts[labels[i]!]!++;
    v.forEach((x, d) => (sums[labels[i]!]![d]! += x));
  });
  let correct = 0;
  unit.forEach((v, i) => {
    let best = -1;
    let bestScore = -Infinity;
    for (let c = 0; c < classes; c++) {
      const own = c === labels[i];
      const n = counts[c]! - (own ? 1 : 0);
      let score = 0;
      for (let d = 0; d < dim; d++) score += v[d]! * ((sums[c]![d]! - (own ? v[d]! : 0)) / n);
      if (score > bestScore) [best, bestScore] = [c, score];
    }
    if (best === labels[i]) correct++;
  });
  return correct / vectors.length;
}
