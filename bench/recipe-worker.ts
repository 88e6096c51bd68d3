/**
 * One worker of the recipe bench's {@link TrialPool}: its own tfjs backend, the features shared
 * with the main thread, one trial at a time.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { useBackend, type BackendChoice } from '../src/backend.js';
import { localRunner, type TrialSetup, type WorkerReply } from './recipe-pool.js';

const port = parentPort!;
const setup = workerData as TrialSetup;
const message = (error: unknown) => (error instanceof Error ? error.message : String(error)).split('\n')[0]!;

try {
  await useBackend(setup.backend as BackendChoice);
  const run = localRunner(setup);
  port.on('message', (job: { id: number; model: string; split: number; settings: Parameters<typeof run>[2]; epochs: number }) => {
    run(job.model, job.split, job.settings, job.epochs).then(
      (result) => port.postMessage({ id: job.id, result } satisfies WorkerReply),
      (error: unknown) => port.postMessage({ id: job.id, error: message(error) } satisfies WorkerReply),
    );
  });
  port.postMessage({ ready: true });
} catch (error) {
  port.postMessage({ error: `recipe worker could not start: ${message(error)}` });
}
