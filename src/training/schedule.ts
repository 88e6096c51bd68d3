export const LR_SCHEDULES = ['constant', 'cosine', 'step'] as const;
export type LrSchedule = (typeof LR_SCHEDULES)[number];

/**
 * The learning rate of `epoch` (1-based) out of `epochs`: a linear warm-up over the first `warmup`
 * epochs, then `constant`, `cosine` (half a cosine from `base` towards 0, never reaching it) or
 * `step` (×0.1 after half the epochs, ×0.01 after three quarters).
 */
export function learningRate(base: number, schedule: LrSchedule, epoch: number, epochs: number, warmup = 0): number {
  if (epoch <= warmup) return (base * epoch) / (warmup + 1);
  const span = epochs - warmup;
  const progress = span > 0 ? (epoch - warmup - 1) / span : 0;
  switch (schedule) {
    case 'constant':
      return base;
    case 'cosine':
      return base * 0.5 * (1 + Math.cos(Math.PI * progress));
    case 'step':
      return base * (progress >= 0.75 ? 0.01 : progress >= 0.5 ? 0.1 : 1);
  }
}
