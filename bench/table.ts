/** Plain-text tables for the bench output: first column left-aligned, the others right-aligned. */
export function formatTable(headers: readonly string[], rows: ReadonlyArray<ReadonlyArray<string>>): string {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: ReadonlyArray<string>) => cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  return [line(headers), ...rows.map(line)].join('\n');
}

/** A number with a fixed count of decimals and thousands separators. */
export const fixed = (value: number, decimals = 1): string =>
  Number.isFinite(value) ? value.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals }) : 'n/a';

export const times = (ratio: number): string => `${fixed(ratio, 2)}×`;
