/** A fraction as a percentage with one decimal ("89.9%"), or "n/a" when it is not a number. */
export const percent = (fraction: number): string => (Number.isFinite(fraction) ? `${(100 * fraction).toFixed(1)}%` : 'n/a');
