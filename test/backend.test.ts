import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { useBackend } from '../src/backend.js';
import { installMaxPoolGradient } from '../src/backends/max-pool-gradient.js';

const installed = (name: string) => {
  try {
    createRequire(import.meta.url).resolve(name);
    return true;
  } catch {
    return false;
  }
};

describe('useBackend', () => {
  it('auto picks the fastest backend that loads and says why it passed over the others', async () => {
    const active = await useBackend('auto');
    expect(tf.getBackend()).toBe(active.name);
    const order = ['gpu', 'tensorflow', 'wasm', 'cpu'];
    expect(active.skipped.map((s) => s.choice)).toEqual(order.slice(0, order.indexOf(active.choice)));
    for (const s of active.skipped) expect(s.reason).toMatch(/; to get it: npm install @tensorflow\//);
  });

  it.skipIf(installed('@tensorflow/tfjs-node-gpu'))('an explicit backend that is not installed fails with one line saying how to get it', async () => {
    await expect(useBackend('gpu')).rejects.toThrow(/^backend 'gpu' is unavailable \(not installed\); to get it: npm install @tensorflow\/tfjs-node-gpu@\d+\.\d+\.\d+ /);
  });

  it.skipIf(installed('@tensorflow/tfjs-node'))('tensorflow, when not installed, fails with one line saying how to get it', async () => {
    await expect(useBackend('tensorflow')).rejects.toThrow(/^backend 'tensorflow' is unavailable \(not installed\); to get it: npm install @tensorflow\/tfjs-node@\d+\.\d+\.\d+ /);
  });

  it('keeps a backend\'s own max-pool gradient when it is right, and leaves every backend with a right one', async () => {
    for (const choice of ['cpu', 'auto'] as const) {
      await useBackend(choice);
      // useBackend already replaced a wrong kernel, so a second check finds nothing to fix.
      expect(installMaxPoolGradient()).toBe(false);
    }
  });

  it('switches to an explicit backend that is present', async () => {
    const active = await useBackend('cpu');
    expect(active).toEqual({ choice: 'cpu', name: 'cpu', skipped: [] });
    await useBackend('auto');
  });
});
