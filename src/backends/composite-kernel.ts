import * as tf from '@tensorflow/tfjs-core';

/** Registers `kernelName` on `backendName` as a computation with tfjs ops on the same backend. */
export function registerCompositeKernel<Attrs>(kernelName: string, backendName: string, compute: (inputs: Record<string, tf.Tensor>, attrs: Attrs) => tf.Tensor): void {
  tf.registerKernel({ kernelName, backendName, kernelFunc: compositeKernelFunc(compute) });
}

/**
 * A kernel function computing with tfjs ops. Inputs are wrapped as tensors (each with a reference
 * of its own); the result's data is handed to the engine the way tfjs' reshape kernels do it: one
 * more reference, then the temporary tensor goes.
 */
export function compositeKernelFunc<Attrs>(compute: (inputs: Record<string, tf.Tensor>, attrs: Attrs) => tf.Tensor): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const engine = tf.engine();
    const data = backend as unknown as { incRef(dataId: object): void };
    // Wrapping the inputs takes a reference each, which disposing the wrappers gives back.
    const tensors = Object.fromEntries(
      Object.entries(inputs).map(([name, info]) => {
        data.incRef((info as tf.TensorInfo).dataId);
        return [name, engine.makeTensorFromTensorInfo(info as tf.TensorInfo)];
      }),
    );
    try {
      const result = compute(tensors, attrs as unknown as Attrs);
      data.incRef(result.dataId);
      result.dispose();
      return { dataId: result.dataId, shape: result.shape, dtype: result.dtype };
    } finally {
      tf.dispose(Object.values(tensors));
    }
  };
}
