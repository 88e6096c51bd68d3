import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node bundle leaves registering the op gradients to tfjs-layers' bundle.
import '@tensorflow/tfjs-layers';
import { installConvolutionGradients } from './backends/gradients.js';
import { installFasterTransposedMatMul } from './backends/matmul.js';
import { installMaxPoolGradient } from './backends/max-pool-gradient.js';

/** Which TensorFlow.js backend computes: `auto` takes the fastest one that loads here. */
export type BackendChoice = 'auto' | 'gpu' | 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'gpu', 'tensorflow', 'wasm', 'cpu'];

interface Candidate {
  choice: Exclude<BackendChoice, 'auto'>;
  /** The name tfjs registers it under. */
  backend: string;
  load(): Promise<unknown>;
  /** How a user gets it when it is missing. */
  howToGet: string;
}

// A variable specifier keeps TypeScript and bundlers from requiring optional packages at build time.
const importOptional = (name: string) => import(name);

const CANDIDATES: readonly Candidate[] = [
  {
    choice: 'gpu',
    backend: 'tensorflow',
    load: () => importOptional('@tensorflow/tfjs-node-gpu'),
    howToGet: `npm install @tensorflow/tfjs-node-gpu@${tf.version_core} (Linux x64, NVIDIA GPU with CUDA 11.2 and cuDNN 8.1; the install downloads libtensorflow)`,
  },
  {
    choice: 'tensorflow',
    backend: 'tensorflow',
    load: () => importOptional('@tensorflow/tfjs-node'),
    howToGet: `npm install @tensorflow/tfjs-node@${tf.version_core} (the install downloads libtensorflow, so it needs internet access)`,
  },
  {
    choice: 'wasm',
    backend: 'wasm',
    load: () => import('@tensorflow/tfjs-backend-wasm'),
    howToGet: 'npm install @tensorflow/tfjs-backend-wasm',
  },
  {
    choice: 'cpu',
    backend: 'cpu',
    load: () => import('@tensorflow/tfjs-backend-cpu'),
    howToGet: 'npm install @tensorflow/tfjs-backend-cpu',
  },
];

export interface ActiveBackend {
  choice: Exclude<BackendChoice, 'auto'>;
  /** tfjs' name for it (`tensorflow`, `wasm`, `cpu`). */
  name: string;
  /** Faster backends that `auto` passed over, and why. */
  skipped: Array<{ choice: string; reason: string }>;
}

function firstLine(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return 'not installed';
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}

async function activate(candidate: Candidate): Promise<void> {
  await candidate.load();
  // Production mode: no debug checks, and no console advice from tfjs (rxcnn reports the backend itself).
  tf.env().set('PROD', true);
  installConvolutionGradients(candidate.backend);
  installFasterTransposedMatMul(candidate.backend);
  if (!(await tf.setBackend(candidate.backend))) throw new Error(`tfjs could not initialise the ${candidate.backend} backend`);
  await tf.ready();
  // Checked by running it, so it needs the backend active.
  installMaxPoolGradient();
}

/**
 * Makes `choice` the active tfjs backend. `auto` tries tfjs-node-gpu, tfjs-node, wasm, then cpu and
 * reports why it skipped the faster ones; an explicit choice that cannot load fails with one line
 * saying how to get it.
 */
export async function useBackend(choice: BackendChoice = 'auto'): Promise<ActiveBackend> {
  if (!BACKEND_CHOICES.includes(choice)) throw new Error(`unknown backend '${choice}'; use one of ${BACKEND_CHOICES.join(', ')}`);
  const skipped: ActiveBackend['skipped'] = [];
  for (const candidate of CANDIDATES) {
    if (choice !== 'auto' && candidate.choice !== choice) continue;
    try {
      await activate(candidate);
      return { choice: candidate.choice, name: tf.getBackend(), skipped };
    } catch (error) {
      const reason = firstLine(error);
      if (choice !== 'auto') throw new Error(`backend '${choice}' is unavailable (${reason}); to get it: ${candidate.howToGet}`);
      skipped.push({ choice: candidate.choice, reason: `${reason}; to get it: ${candidate.howToGet}` });
    }
  }
  throw new Error(`no TensorFlow.js backend could be loaded: ${skipped.map((s) => `${s.choice}: ${s.reason}`).join('; ')}`);
}
