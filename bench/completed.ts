import type { Task } from 'tinybench';

/** A finished tinybench case's result, or one line saying how the case ended instead. */
export function completed(task: Task) {
  const result = task.result;
  if (result.state !== 'completed') throw new Error(`bench case '${task.name}' ended ${result.state}${'error' in result ? `: ${String(result.error)}` : ''}`);
  return result;
}
