import type { Comparison } from './comparison.js';
import { ensembleShown } from './ensemble.js';
import { TABLE_HEADER, tableCells, tableNotes } from './table.js';
import { percent } from '../core/format.js';

const escape = (text: string) => text.replace(/\|/g, '\\|');

/** `compare.md`, rendered from `compare.json`. */
export function renderComparisonMarkdown(c: Comparison): string {
  const s = c.split;
  const ensemble = ensembleShown(c);
  const lines = [
    `# Comparison: ${c.models.map((m) => m.model).join(', ')}`,
    '',
    `One split for every model (\`${s.manifest}\`): ${s.root}, protocol ${s.protocol}, seed ${s.seed}, ${s.classes} classes, ${s.train} train / ${s.test} test images.`,
    '',
    `| ${TABLE_HEADER.join(' | ')} |`,
    `|${TABLE_HEADER.map(() => '---').join('|')}|`,
    ...c.models.map((row) => `| ${tableCells(row).map(escape).join(' | ')} |`),
    ...(ensemble.row ? [`| ${ensemble.row.map(escape).join(' | ')} |`] : []),
    '',
    c.summary.text,
    '',
    ...[...tableNotes(c.models), ...ensemble.notes].map((note) => `${note}  `),
    '',
    `![${c.plots.accuracyVsSpeed.title}](${c.plots.accuracyVsSpeed.png})`,
  ];
  for (const d of c.details) {
    const model = c.models.find((m) => m.graph === d.graph)!.model;
    lines.push(
      '',
      `## ${model}`,
      '',
      `Run: [\`${d.report}\`](${d.report}); per-epoch log: [\`${d.csv}\`](${d.csv}).`,
      '',
      `![${d.plots.history.title}](${d.plots.history.png})`,
      '',
      `![${d.plots.confusion.title}](${d.plots.confusion.png})`,
      '',
      `### Most confused classes (test images)`,
      '',
    );
    if (d.confusedPairs.length === 0) lines.push('No test image was misclassified.');
    else {
      lines.push('| true class | predicted | images | share of true class |', '|---|---|---|---|');
      lines.push(...d.confusedPairs.map((p) => `| ${escape(p.actual)} | ${escape(p.predicted)} | ${p.count} | ${percent(p.shareOfActual)} |`));
    }
  }
  return `${lines.join('\n')}\n`;
}
