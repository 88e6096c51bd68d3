import cliProgress from 'cli-progress';
import type { Progress } from '../graphs/index.js';

/** A progress bar on stderr for long work, when stderr is a terminal and the run is not quiet. */
export function progressReporter(quiet: boolean, prefix = '') {
  if (quiet || !process.stderr.isTTY) return { update: (_: Progress) => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: `${prefix}{phase} {epoch} [{bar}] {value}/{total} images | {duration_formatted}`, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let key = '';
  return {
    update(p: Progress) {
      const current = `${p.phase}/${p.epoch}`;
      if (current !== key) {
        if (key) bar.stop();
        key = current;
        bar.start(p.total, 0, { phase: p.phase, epoch: p.phase === 'full pass' || p.phase === 'features' ? '' : `epoch ${p.epoch}` });
      }
      bar.update(p.done);
    },
    stop: () => {
      bar.stop();
      key = '';
    },
  };
}
