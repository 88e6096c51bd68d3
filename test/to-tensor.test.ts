import * as tf from '@tensorflow/tfjs-core';
import { firstValueFrom, of } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { ImageBatch } from '../src/core/types.js';
import { PREPROCESSINGS } from '../src/models/preprocessing.js';
import { normalize } from '../src/core/normalize.js';
import { toTensor } from '../src/operators/to-tensor.js';

/** One 1×2 image: a pure red and a mid-grey pixel. */
const batch: ImageBatch = { x: Uint8Array.from([255, 0, 0, 128, 128, 128]), shape: [1, 1, 2, 3], y: Int32Array.from([4]), paths: ['a'] };

describe('normalize / toTensor', () => {
  it.each([
    ['unit', [1, 0, 0, 128 / 255, 128 / 255, 128 / 255]],
    ['symmetric', [1, -1, -1, 128 / 127.5 - 1, 128 / 127.5 - 1, 128 / 127.5 - 1]],
    ['caffe', [0 - 103.939, 0 - 116.779, 255 - 123.68, 128 - 103.939, 128 - 116.779, 128 - 123.68]],
    ['imagenet', [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (0 - 0.406) / 0.225, (128 / 255 - 0.485) / 0.229, (128 / 255 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225]],
    ['raw', [255, 0, 0, 128, 128, 128]],
  ] as const)('%s', (preprocessing, expected) => {
    const t = normalize(batch, preprocessing);
    expect(t.shape).toEqual([1, 1, 2, 3]);
    const values = Array.from(t.dataSync());
    expected.forEach((v, i) => expect(values[i]).toBeCloseTo(v, 4));
    t.dispose();
  });

  it('covers every declared preprocessing', () => {
    expect([...PREPROCESSINGS].sort()).toEqual(['caffe', 'imagenet', 'raw', 'symmetric', 'unit']);
  });

  it('the operator hands over tensors that the receiver disposes; nothing else is left', async () => {
    const before = tf.memory().numTensors;
    const out = await firstValueFrom(of(batch).pipe(toTensor('unit')));
    expect(out.x.shape).toEqual([1, 1, 2, 3]);
    expect(Array.from(out.y.dataSync())).toEqual([4]);
    expect(tf.memory().numTensors).toBe(before + 2);
    tf.dispose([out.x, out.y]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
