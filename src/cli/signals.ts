import { dirname } from 'node:path';
import { RunInterrupted } from '../graphs/experiment.js';

/** Exit codes of a run stopped by a signal, as shells report them (128 + signal number). */
export const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

/**
 * The first SIGINT/SIGTERM aborts the returned signal (the run checkpoints and writes its partial
 * report); a second one exits at once.
 */
export function stopOnSignals(say: (line: string) => void, beforeSaying: () => void = () => {}): AbortSignal {
  const stop = new AbortController();
  for (const signal of Object.keys(SIGNAL_EXIT)) {
    process.on(signal, () => {
      if (stop.signal.aborted) process.exit(SIGNAL_EXIT[signal]);
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
    console.error(`resume with: npm run graph -- --resume ${JSON.stringify(dirname(error.partialReport))}`);
    // work abandoned mid-flight (a feature pass, a decode) must not keep the process alive
    process.exit(SIGNAL_EXIT[error.reason] ?? 1);
  }
  process.exitCode = 1;
}
