import { join } from 'node:path';
import sharp from 'sharp';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import { writeFileAtomic } from '../core/files.js';
import type { ComparedReport, ModelRow, PlotFiles } from './comparison.js';
import { percent } from '../core/format.js';

type Spec = vl.TopLevelSpec;
const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const CONFIG = { font: 'sans-serif', view: { stroke: '#ddd' }, axis: { labelFontSize: 11, titleFontSize: 12 } };

/** Training and validation accuracy and loss per epoch, side by side, the best epoch marked. */
export function historySpec(model: string, history: ComparedReport['history'], bestEpoch: number, validation: string): Spec {
  const last = Math.max(2, ...history.map((h) => h.epoch));
  const points = history.flatMap((h) => [
    { epoch: h.epoch, metric: 'accuracy', series: 'training', value: h.top1 },
    { epoch: h.epoch, metric: 'accuracy', series: 'validation', value: h.valTop1 },
    { epoch: h.epoch, metric: 'loss', series: 'training', value: h.loss },
    { epoch: h.epoch, metric: 'loss', series: 'validation', value: h.valLoss },
  ]);
  const x = { field: 'epoch', type: 'quantitative' as const, scale: { domain: [1, last] }, axis: { tickMinStep: 1, format: 'd' } };
  const panel = (metric: 'accuracy' | 'loss') => ({
    width: 280,
    height: 190,
    title: metric,
    layer: [
      {
        data: { values: points.filter((p) => p.metric === metric).map((p) => ({ ...p, label: `epoch ${p.epoch} ${p.series} ${metric}: ${metric === 'accuracy' ? percent(p.value) : p.value.toFixed(3)}` })) },
        mark: { type: 'line', point: true },
        encoding: {
          x,
          y: { field: 'value', type: 'quantitative', title: metric, ...(metric === 'accuracy' ? { scale: { domain: [0, 1] }, axis: { format: '%' } } : { scale: { zero: true } }) },
          color: { field: 'series', type: 'nominal', title: null, scale: { domain: ['training', 'validation'], range: ['#4c78a8', '#f58518'] } },
          description: { field: 'label' },
        },
      },
      { data: { values: [{ epoch: bestEpoch }] }, mark: { type: 'rule', strokeDash: [4, 3], color: '#555' }, encoding: { x } },
      {
        data: { values: [{ epoch: bestEpoch, label: `best epoch ${bestEpoch}` }] },
        mark: { type: 'text', y: 4, dx: bestEpoch > (1 + last) / 2 ? -4 : 4, align: bestEpoch > (1 + last) / 2 ? 'right' : 'left', baseline: 'top', fontSize: 11, color: '#333' },
        encoding: { x, text: { field: 'label' } },
      },
    ],
  });
  return { $schema: SCHEMA, title: { text: `${model}: training history`, subtitle: `validation: ${validation}; dashed line: best epoch (lowest validation loss)` }, hconcat: [panel('accuracy'), panel('loss')], config: CONFIG } as Spec;
}

/**
 * Confusion heatmap of the test images, rows normalised to the share of each true class and
 * classes in dataset order. Only non-empty cells are drawn (each with a tooltip), and the axis
 * names every k-th class, so 257 classes stay readable and the file stays small.
 */
export function confusionSpec(model: string, classNames: readonly string[], confusion: readonly (readonly number[])[]): Spec {
  const n = classNames.length;
  const cell = Math.min(28, Math.max(3, Math.floor(760 / n)));
  const every = Math.ceil(11 / cell);
  const cells = confusion.flatMap((row, r) => {
    const total = row.reduce((a, b) => a + b, 0);
    return row.flatMap((count, c) =>
      count > 0
        ? [{ actual: classNames[r]!, predicted: classNames[c]!, count, share: count / total, label: `${classNames[r]} → ${classNames[c]}: ${count} image${count === 1 ? '' : 's'} (${percent(count / total)} of ${classNames[r]})` }]
        : [],
    );
  });
  const axis = { values: classNames.filter((_, i) => i % every === 0), labelFontSize: every > 1 ? 9 : 11, labelLimit: 140 };
  return {
    $schema: SCHEMA,
    title: { text: `${model}: confusion matrix (test images)`, subtitle: `rows: true class, normalised; ${n} classes${every > 1 ? `, every ${every === 2 ? 'second' : `${every}th`} named` : ''}` },
    width: n * cell,
    height: n * cell,
    data: { values: cells },
    mark: { type: 'rect' },
    encoding: {
      x: { field: 'predicted', type: 'nominal', sort: null, scale: { domain: [...classNames], paddingInner: 0 }, axis: { ...axis, title: 'predicted class', labelAngle: -90 } },
      y: { field: 'actual', type: 'nominal', sort: null, scale: { domain: [...classNames], paddingInner: 0 }, axis: { ...axis, title: 'true class' } },
      color: { field: 'share', type: 'quantitative', title: 'share of true class', scale: { domain: [0, 1], scheme: { name: 'blues', extent: [0.15, 1] } }, legend: { format: '%' } },
      description: { field: 'label' },
      tooltip: { field: 'label' },
    },
    config: CONFIG,
  } as Spec;
}

/** Every model's accuracy against its speed; bubble area is the parameter count. */
export function accuracyVsSpeedSpec(rows: readonly ModelRow[]): Spec {
  const params = rows.map((r) => r.params);
  const values = rows.map((r) => ({
    model: r.model,
    imagesPerSecond: r.speed.imagesPerSecond,
    meanPerClass: r.meanPerClass,
    params: r.params,
    label: `${r.model}: ${percent(r.meanPerClass)} mean per-class, ${r.speed.imagesPerSecond.toFixed(1)} images/s, ${r.params.toLocaleString('en-US')} parameters`,
  }));
  const x = { field: 'imagesPerSecond', type: 'quantitative', title: 'images/s (full inference pass, batch 32)', scale: { zero: false, padding: 40 } } as const;
  // Padding keeps the bubbles inside the frame; accuracy stops at 100%.
  const y = { field: 'meanPerClass', type: 'quantitative', title: 'mean per-class test accuracy', axis: { format: '%', labelExpr: "datum.value > 1.0001 ? '' : datum.label" }, scale: { zero: false, padding: 40, domainMax: 1 } } as const;
  return {
    $schema: SCHEMA,
    title: 'Accuracy against speed (bubble area: parameters)',
    width: 440,
    height: 300,
    data: { values },
    layer: [
      {
        mark: { type: 'circle', opacity: 0.6, stroke: '#333', strokeWidth: 1 },
        encoding: {
          x,
          y,
          size: { field: 'params', type: 'quantitative', title: 'parameters', scale: { range: [80, 2000] }, legend: { format: '.3~s', values: [...new Set([Math.min(...params), Math.max(...params)])] } },
          color: { field: 'model', type: 'nominal', legend: null },
          description: { field: 'label' },
          tooltip: { field: 'label' },
        },
      },
      { mark: { type: 'text', dy: -14, fontSize: 11 }, encoding: { x, y, text: { field: 'model' } } },
    ],
    config: CONFIG,
  } as Spec;
}

/** Gives every described mark a `<title>`, so a browser shows its description as a tooltip. */
function withTooltips(svg: string): string {
  return svg.replace(/<path aria-label="([^"]*)" role="graphics-symbol"([^>]*?)\/>/g, '<path aria-label="$1" role="graphics-symbol"$2><title>$1</title></path>');
}

/** Renders a vega-lite spec headless to `<dir>/<name>.svg` and `.png`; returns paths relative to `root`. */
export async function renderPlot(spec: Spec, root: string, name: string, title: string): Promise<PlotFiles> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  let svg: string;
  try {
    svg = withTooltips(await view.toSVG());
  } finally {
    view.finalize();
  }
  const files = { title, svg: `plots/${name}.svg`, png: `plots/${name}.png` };
  await writeFileAtomic(join(root, files.svg), svg);
  await writeFileAtomic(join(root, files.png), await sharp(Buffer.from(svg), { density: 144 }).png().toBuffer());
  return files;
}
