import type { Comparison, PlotFiles } from './comparison.js';
import { ensembleShown } from './ensemble.js';
import { TABLE_HEADER, tableCells, tableNotes } from './table.js';
import { percent } from '../core/format.js';

const html = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Every plot of a comparison, in page order. */
export function plotsOf(c: Comparison): PlotFiles[] {
  return [c.plots.accuracyVsSpeed, ...c.details.flatMap((d) => [d.plots.history, d.plots.confusion])];
}

/** Vega numbers its clip paths and gradients from 0 in every file; inlined together they must not collide. */
function namespaced(svg: string, prefix: string): string {
  return svg.replace(/\bid="([^"]+)"/g, `id="${prefix}$1"`).replace(/url\(#([^)]+)\)/g, `url(#${prefix}$1)`).replace(/href="#([^"]+)"/g, `href="#${prefix}$1"`);
}

const STYLE = `body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}.pairs td:nth-child(2){text-align:left}
figure{margin:1.5rem 0}figure svg{max-width:100%;height:auto}figcaption{font-size:.85rem;color:#555}.notes{font-size:.9rem;color:#444}`;

/**
 * `index.html`, rendered from `compare.json` with every plot's SVG inlined (`svgs`, by its path),
 * so the page opens from disk with no server; marks carry tooltips.
 */
export function renderComparisonHtml(c: Comparison, svgs: ReadonlyMap<string, string>): string {
  let figures = 0;
  const figure = (plot: PlotFiles) => {
    const svg = svgs.get(plot.svg);
    if (svg === undefined) throw new Error(`plot missing: ${plot.svg}`);
    figures += 1;
    return `<figure class="plot" data-plot="${html(plot.svg)}">${namespaced(svg, `p${figures}-`)}<figcaption>${html(plot.title)} — <a href="${html(plot.svg)}">SVG</a>, <a href="${html(plot.png)}">PNG</a></figcaption></figure>`;
  };
  const s = c.split;
  const ensemble = ensembleShown(c);
  const cells = (values: string[]) => values.map((cell) => `<td>${html(cell)}</td>`).join('');
  const rows = [...c.models.map((row) => `<tr>${cells(tableCells(row))}</tr>`), ...(ensemble.row ? [`<tr class="ensemble">${cells(ensemble.row)}</tr>`] : [])];
  const sections = c.details.map((d) => {
    const model = c.models.find((m) => m.graph === d.graph)!.model;
    const pairs =
      d.confusedPairs.length === 0
        ? '<p>No test image was misclassified.</p>'
        : `<table class="pairs"><thead><tr><th>true class</th><th>predicted</th><th>images</th><th>share of true class</th></tr></thead><tbody>${d.confusedPairs
            .map((p) => `<tr><td>${html(p.actual)}</td><td>${html(p.predicted)}</td><td>${p.count}</td><td>${percent(p.shareOfActual)}</td></tr>`)
            .join('')}</tbody></table>`;
    return `<section class="model" id="${html(d.graph)}"><h2>${html(model)}</h2>
<p>Run: <a href="${html(d.report)}">${html(d.report)}</a>; per-epoch log: <a href="${html(d.csv)}">${html(d.csv)}</a>.</p>
${figure(d.plots.history)}
${figure(d.plots.confusion)}
<h3>Most confused classes (test images)</h3>
${pairs}</section>`;
  });
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Comparison: ${html(c.models.map((m) => m.model).join(', '))}</title><style>${STYLE}</style></head>
<body>
<h1>Comparison: ${html(c.models.map((m) => m.model).join(', '))}</h1>
<p>One split for every model (<a href="${html(s.manifest)}">${html(s.manifest)}</a>): ${html(s.root)}, protocol ${html(s.protocol)}, seed ${s.seed}, ${s.classes} classes, ${s.train} train / ${s.test} test images.</p>
<table id="comparison"><thead><tr>${TABLE_HEADER.map((h) => `<th>${html(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>
<p id="summary">${html(c.summary.text)}</p>
<div class="notes">${[...tableNotes(c.models), ...ensemble.notes].map((n) => `<p>${html(n)}</p>`).join('')}</div>
${figure(c.plots.accuracyVsSpeed)}
${sections.join('\n')}
</body></html>
`;
}
