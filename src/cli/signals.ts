import { RunInterrupted } from '../graphs/experiment.js';

/** Exit codes of a run stopped by a signal, as shells report them (128 + signal number). */
export const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

/**
 * Signals this close after the first are the same Ctrl-C: a terminal signals the whole foreground
 * process group, and npm and rxcnn's launcher (src/cli/launch.ts) each relay what they receive to
 * their child, so one key press reaches the run two or three times within milliseconds.
 */
export const SAME_SIGNAL_MS = 1000;

/**
 * The first SIGINT/SIGTERM aborts the returned signal (the run checkpoints and writes its partial
 * report); another one, more than {@link SAME_SIGNAL_MS} later, exits at once.
 */
export function stopOnSignals(say: (line: string) => void, beforeSaying: () => void = () => {}): AbortSignal {
  const stop = new AbortController();
  let first = 0;
  for (const signal of Object.keys(SIGNAL_EXIT)) {
    process.on(signal, () => {
      if (stop.signal.aborted && performance.now() - first < SAME_SIGNAL_MS) return;
      if (stop.signal.aborted) process.exit(SIGNAL_EXIT[signal]);
      first = performance.now();
      beforeSaying();
      say(`${signal}: stopping; the last finished epoch is checkpointed (again to exit at once)`);
      stop.abort(signal);
    });
  }
  return stop.signal;
}

/** Prints a failed command's one line and sets its exit code (130/143 for an interrupted run). */
export function fail(error: unknown): void {
  console.error(`rxcnn: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
  if (error instanceof RunInterrupted) {
    console.error(`resume with: ${error.resume}`);
    // work abandoned mid-flight (a feature pass, a decode) must not keep the process alive
    process.exit(SIGNAL_EXIT[error.reason] ?? 1);
  }
  process.exitCode = 1;
}
