import { Worker } from 'node:worker_threads';

/**
 * Starts a worker thread on `script`. From TypeScript sources the worker first registers tsx's
 * loader itself: loader hooks from the parent's --import do not reach a worker's entry file in
 * Node 20.
 */
export function startWorker(script: URL, workerData: unknown): Worker {
  if (!script.pathname.endsWith('.ts')) return new Worker(script, { workerData });
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((api) => api.register()).then(() => import(${JSON.stringify(script.href)}))`;
  return new Worker(boot, { eval: true, workerData });
}
