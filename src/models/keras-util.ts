/** Keras applications' small helpers, shared by the builders. */

/** Keras' `_make_divisible` (EfficientNet's `round_filters`): round channels to a multiple of 8 without losing more than 10%. */
export function makeDivisible(value: number, divisor = 8): number {
  const rounded = Math.max(divisor, Math.floor((value + divisor / 2) / divisor) * divisor);
  return rounded < 0.9 * value ? rounded + divisor : rounded;
}

/** Keras' `correct_pad`: the asymmetric zero padding TF's 'same' applies before a stride-2 convolution. */
export function correctPad(size: number, kernel = 3): [[number, number], [number, number]] {
  const adjust = 1 - (size % 2);
  const correct = Math.floor(kernel / 2);
  return [
    [correct - adjust, correct],
    [correct - adjust, correct],
  ];
}
