/**
 * One worker of a {@link ParallelModel} pool: its own tfjs backend and its own copy of the model,
 * predicting the slices of batches the main thread sends.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { useBackend, type BackendChoice } from '../backend.js';
// Registers rxcnn's custom layer classes, so models that use them deserialise.
import '../models/layers.js';
import { normalize } from '../core/normalize.js';
import { movable, type WorkerReply, type WorkerRequest, type WorkerSetup } from './parallel-protocol.js';

type Shape4 = [number, number, number, number];
const port = parentPort!;
const setup = workerData as WorkerSetup;
const reply = (message: WorkerReply, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);
const message = (error: unknown) => (error instanceof Error ? error.message : String(error)).split('\n')[0]!;

try {
  await useBackend(setup.backend as BackendChoice);
  const model = await tfl.loadLayersModel(tf.io.fromMemory(setup.artifacts));
  port.on('message', (request: WorkerRequest) => {
    try {
      const output = tf.tidy(() => {
        const x = request.kind === 'pixels' ? normalize({ x: request.pixels, shape: request.shape as Shape4 }, request.preprocessing) : tf.tensor(request.values, request.shape);
        return model.predict(x) as tf.Tensor;
      });
      const values = movable(output.dataSync() as Float32Array);
      const shape = output.shape;
      output.dispose();
      reply({ kind: 'result', id: request.id, values, shape }, [values.buffer as ArrayBuffer]);
    } catch (error) {
      reply({ kind: 'failed', id: request.id, message: message(error) });
    }
  });
  reply({ kind: 'ready', backend: tf.getBackend() });
} catch (error) {
  reply({ kind: 'failed', id: -1, message: `worker could not load the model: ${message(error)}` });
}
