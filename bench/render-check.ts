/**
 * `npm run bench -- render <compare folder> [--screenshot FILE]` (or `npx tsx bench/render-check.ts …`):
 * opens the folder's index.html from disk in headless Chromium and checks that the comparison table
 * has a row per model and that every plot listed in compare.json is on the page and laid out with
 * a size and marks. Needs Debian's chromium (`apt-get install chromium`); CHROMIUM overrides the path.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import type { Comparison } from '../src/compare/comparison.js';
import { plotsOf } from '../src/compare/html.js';

const run = promisify(execFile);
const CHROMIUM = process.env['CHROMIUM'] ?? '/usr/bin/chromium';

/** Appended to a copy of the page: what the browser laid out, as JSON in a <pre>. */
const PROBE = `<script>
(() => {
  const plots = [...document.querySelectorAll('figure.plot')].map((figure) => {
    const svg = figure.querySelector('svg');
    const box = svg ? svg.getBoundingClientRect() : { width: 0, height: 0 };
    return { plot: figure.dataset.plot, svg: svg instanceof SVGSVGElement, width: box.width, height: box.height, marks: svg ? svg.querySelectorAll('path,text').length : 0 };
  });
  const rows = document.querySelectorAll('#comparison tbody tr').length;
  const out = document.createElement('pre');
  out.id = 'render-check';
  out.textContent = JSON.stringify({ plots, rows, summary: (document.getElementById('summary') || {}).textContent || '' });
  document.body.appendChild(out);
})();
</script>`;

export interface RenderCheck {
  ok: boolean;
  problems: string[];
  plots: Array<{ plot: string; width: number; height: number; marks: number }>;
  rows: number;
}

function chromiumArgs(profile: string): string[] {
  return ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`];
}

/** Renders `<dir>/index.html` in headless Chromium and checks it against `<dir>/compare.json`. */
export async function renderCheck(dir: string, options: { screenshot?: string } = {}): Promise<RenderCheck> {
  if (!existsSync(CHROMIUM)) throw new Error(`chromium not found at ${CHROMIUM}; install it with: apt-get install chromium (or set CHROMIUM)`);
  const comparison = JSON.parse(await readFile(join(dir, 'compare.json'), 'utf8')) as Comparison;
  const page = await readFile(join(dir, 'index.html'), 'utf8');
  if (!page.includes('</body>')) throw new Error(`${join(dir, 'index.html')} has no </body>: not a complete page`);
  // The probe copy sits beside index.html so that relative links resolve as they do for the page.
  const probe = join(dir, `.render-check-${process.pid}.html`);
  const profile = await mkdtemp(join(tmpdir(), 'rxcnn-chromium-'));
  try {
    await writeFile(probe, page.replace('</body>', `${PROBE}</body>`));
    const { stdout } = await run(CHROMIUM, [...chromiumArgs(profile), '--dump-dom', pathToFileURL(resolve(probe)).href], { timeout: 120_000, maxBuffer: 256 * 1024 * 1024 });
    if (options.screenshot) {
      await run(CHROMIUM, [...chromiumArgs(profile), `--screenshot=${resolve(options.screenshot)}`, '--window-size=1280,2400', pathToFileURL(resolve(dir, 'index.html')).href], { timeout: 120_000 });
    }
    const found = /<pre id="render-check">([^<]*)<\/pre>/.exec(stdout);
    if (!found) return { ok: false, problems: ['the page did not finish rendering (no probe output in the DOM)'], plots: [], rows: 0 };
    const unescape = (text: string) => text.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
    const result = JSON.parse(unescape(found[1]!)) as { plots: Array<{ plot: string; svg: boolean; width: number; height: number; marks: number }>; rows: number };
    const problems: string[] = [];
    // the ensemble row, when there is one, follows the models' (compare.json from before it has none)
    const expectedRows = comparison.models.length + (comparison.ensemble && 'model' in comparison.ensemble ? 1 : 0);
    if (result.rows !== expectedRows) problems.push(`table has ${result.rows} rows, compare.json ${expectedRows} (models and ensemble)`);
    for (const expected of plotsOf(comparison)) {
      const shown = result.plots.find((p) => p.plot === expected.svg);
      if (!shown) problems.push(`plot not on the page: ${expected.svg}`);
      else if (!shown.svg || shown.width < 50 || shown.height < 50 || shown.marks < 5) problems.push(`plot not drawn: ${expected.svg} (${shown.width}×${shown.height} px, ${shown.marks} marks)`);
    }
    return { ok: problems.length === 0, problems, plots: result.plots, rows: result.rows };
  } finally {
    await rm(probe, { force: true });
    await rm(profile, { recursive: true, force: true });
  }
}

export async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, options: { screenshot: { type: 'string' } }, allowPositionals: true });
  if (positionals.length !== 1) throw new Error('usage: npm run bench -- render <compare folder> [--screenshot FILE]');
  const dir = positionals[0]!;
  const check = await renderCheck(dir, values.screenshot ? { screenshot: values.screenshot } : {});
  console.log(`${join(dir, 'index.html')} in headless Chromium: table ${check.rows} rows; ${check.plots.length} plots`);
  for (const p of check.plots) console.log(`  ${p.plot}: ${Math.round(p.width)}×${Math.round(p.height)} px, ${p.marks} marks`);
  if (values.screenshot) console.log(`screenshot: ${values.screenshot}`);
  if (!check.ok) throw new Error(`render check failed: ${check.problems.join('; ')}`);
  console.log('render check passed');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(`render-check: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
}
