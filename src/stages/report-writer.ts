import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../core/files.js';
import { renderMarkdown, type Report } from '../report.js';
import type { RunState } from './callbacks.js';

export const PARTIAL_REPORT = 'partial-report.json';

/** `report.json` and `report.md`, each atomically; a partial report of an earlier interruption goes. */
export async function writeReport(out: string, report: Report): Promise<void> {
  await writeJsonAtomic(join(out, 'report.json'), report);
  await writeFileAtomic(join(out, 'report.md'), renderMarkdown(report));
  await rm(join(out, PARTIAL_REPORT), { force: true });
}

/** The run stopped on request; what was finished is in the checkpoint and the partial report. */
export class RunInterrupted extends Error {
  constructor(
    readonly reason: string,
    readonly partialReport: string,
    readonly epochsDone: number,
    /** The command that continues it. */
    readonly resume: string,
  ) {
    super(`interrupted (${reason}) after ${epochsDone} finished epoch(s); partial report ${partialReport}`);
  }
}

export interface PartialReport {
  reason: string;
  graph: string;
  model: string;
  epochsPlanned: number;
  run: RunState;
  checkpoint: string | null;
  resume: string;
  options: unknown;
  startedAt: Date;
}

/** What finished before an interruption, written atomically beside the checkpoint; returns its path. */
export async function writePartialReport(out: string, partial: PartialReport): Promise<string> {
  const path = join(out, PARTIAL_REPORT);
  const { run } = partial;
  await writeJsonAtomic(path, {
    status: 'interrupted',
    reason: partial.reason,
    graph: partial.graph,
    model: partial.model,
    epochsPlanned: partial.epochsPlanned,
    epochsDone: run.epoch,
    history: run.history,
    best: run.best,
    checkpoint: partial.checkpoint,
    resume: partial.resume,
    options: partial.options,
    startedAt: partial.startedAt.toISOString(),
    interruptedAt: new Date().toISOString(),
  });
  return path;
}
