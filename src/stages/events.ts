import type { Skip } from '../core/types.js';
import type { EpochRecord, Report } from '../report.js';

export interface Progress {
  phase: 'features' | 'train' | 'evaluate' | 'full pass';
  epoch: number;
  done: number;
  total: number;
}

/** What a run tells while it works; `experimentEvents` emits them as one stream, ending with `done`. */
export type RunEvent =
  | { type: 'progress'; progress: Progress }
  /** A file that cannot be used, once, the first time it is met. */
  | { type: 'skip'; skip: Skip }
  /** A finished (and checkpointed) epoch; `epochs` is how many the run plans in all. */
  | { type: 'epoch'; record: EpochRecord; epochs: number }
  /** A one-line notice that does not stop the run. */
  | { type: 'warning'; line: string }
  | { type: 'done'; report: Report };

export type Emit = (event: RunEvent) => void;

/** Callbacks for a run's events, for callers who prefer them to the stream. */
export interface ExperimentHooks {
  onProgress?: (progress: Progress) => void;
  onSkip?: (skip: Skip) => void;
  onEpoch?: (record: EpochRecord, epochs: number) => void;
  onWarning?: (line: string) => void;
  /**
   * Aborting it stops the run at once: the epoch in progress is abandoned (the checkpoint of the
   * last finished epoch stays), `partial-report.json` is written and the run fails with `RunInterrupted`.
   */
  signal?: AbortSignal;
}

/** The hooks adapter: calls the hook each event is for. */
export function toHooks(hooks: ExperimentHooks): Emit {
  return (event) => {
    if (event.type === 'progress') hooks.onProgress?.(event.progress);
    else if (event.type === 'skip') hooks.onSkip?.(event.skip);
    else if (event.type === 'epoch') hooks.onEpoch?.(event.record, event.epochs);
    else if (event.type === 'warning') hooks.onWarning?.(event.line);
  };
}

/** Skips said once per file, however many passes meet it. */
export class SkipLog {
  private readonly seen = new Map<string, Skip>();
  constructor(private readonly emit: Emit) {}

  readonly add = (skip: Skip): void => {
    if (this.seen.has(skip.path)) return;
    this.seen.set(skip.path, skip);
    this.emit({ type: 'skip', skip });
  };

  get all(): Skip[] {
    return [...this.seen.values()];
  }
}
