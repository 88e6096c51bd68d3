import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { from, lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { randomFor } from '../src/core/random.js';
import type { Skip } from '../src/core/types.js';
import { decode } from '../src/operators/decode.js';
import { sniffImageFormat } from '../src/decode/header.js';
import { fixtureImages, temporaryDir } from './helpers.js';

const SEED = 7;
const VARIANTS = 360;
const SIZE = 24;
const CLASSES = ['Faces_easy', 'Leopards', 'accordion', 'airplanes', 'bonsai', 'car_side', 'chandelier', 'hawksbill', 'ketch', 'watch'];

type Mutation = 'truncate' | 'flip bytes' | 'damage header' | 'insert garbage' | 'splice';
const MUTATIONS: readonly Mutation[] = ['truncate', 'flip bytes', 'damage header', 'insert garbage', 'splice'];

/** One seeded corruption of a real JPEG (`other` is a second photo, for splicing). */
function corrupt(bytes: Buffer, other: Buffer, mutation: Mutation, random: () => number): Buffer {
  const at = (n: number) => Math.floor(random() * n);
  const garbage = (n: number) => Buffer.from(Array.from({ length: n }, () => at(256)));
  switch (mutation) {
    case 'truncate':
      return bytes.subarray(0, at(bytes.length));
    case 'flip bytes': {
      const out = Buffer.from(bytes);
      for (let k = 1 + at(32); k > 0; k--) out[at(out.length)] ^= 1 + at(255);
      return out;
    }
    case 'damage header': {
      // The first kilobyte holds the markers, quantisation and Huffman tables, and the frame size.
      const out = Buffer.from(bytes);
      for (let k = 1 + at(8); k > 0; k--) out[at(Math.min(1024, out.length))] = at(256);
      return out;
    }
    case 'insert garbage': {
      const cut = at(bytes.length);
      return Buffer.concat([bytes.subarray(0, cut), garbage(1 + at(512)), bytes.subarray(cut)]);
    }
    case 'splice': {
      const cut = at(bytes.length);
      return Buffer.concat([bytes.subarray(0, cut), other.subarray(at(other.length))]);
    }
  }
}

describe('decode under fuzzing', () => {
  // auto: what runs by default; fast: every variant the header lets through goes to the fast
  // decoder alone, with no sharp behind it to catch what it gets wrong.
  it.each(['auto', 'fast'] as const)(`decodes or skips with a reason each of ${VARIANTS} seeded corruptions of real JPEGs, and never crashes (--decoder %s)`, async (decoder) => {
    const corpus = (await Promise.all(CLASSES.map(fixtureImages))).flat();
    expect(corpus).toHaveLength(345);
    const dir = await temporaryDir();
    const made: Array<{ path: string; mutation: Mutation; bytes: Buffer }> = [];
    for (let i = 0; i < VARIANTS; i++) {
      const random = randomFor(SEED, 'fuzz', i);
      const mutation = MUTATIONS[i % MUTATIONS.length]!;
      const source = await readFile(corpus[Math.floor(random() * corpus.length)]!);
      const other = await readFile(corpus[Math.floor(random() * corpus.length)]!);
      const bytes = corrupt(source, other, mutation, random);
      const path = join(dir, `${String(i).padStart(3, '0')}.jpg`);
      await writeFile(path, bytes);
      made.push({ path, mutation, bytes });
    }

    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const skips: Skip[] = [];
    let images;
    try {
      images = await lastValueFrom(
        from(made.map((m, label) => ({ path: m.path, label }))).pipe(decode({ size: SIZE, concurrency: 4, decoder, onSkip: (s) => skips.push(s) }), toArray()),
      );
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);

    // Every input comes out exactly once: decoded, or skipped with a one-line reason.
    expect(images.length + skips.length).toBe(VARIANTS);
    const outcome = new Map<string, string>();
    for (const image of images) {
      expect(image.pixels).toHaveLength(SIZE * SIZE * 3);
      expect([image.width, image.height]).toEqual([SIZE, SIZE]);
      outcome.set(image.path, 'decoded');
    }
    for (const skip of skips) {
      expect(skip.reason).toMatch(/^(cannot decode: \S.*|empty file \(0 bytes\)|not an image \(content\))$/);
      expect(skip.reason).not.toContain('\n');
      outcome.set(skip.path, skip.reason);
    }
    expect(outcome.size).toBe(VARIANTS);
    // Decoded images keep input order.
    expect(images.map((image) => image.label)).toEqual([...images.map((image) => image.label)].sort((a, b) => a - b));

    for (const m of made) {
      // A file that no longer starts like an image never reaches libvips.
      if (m.bytes.length === 0) expect(outcome.get(m.path)).toBe('empty file (0 bytes)');
      else if (!sniffImageFormat(m.bytes.subarray(0, 12))) expect(outcome.get(m.path)).toBe('not an image (content)');
    }
    // Damage libjpeg can read past (most flipped, spliced or inserted bytes) decodes; damage it
    // cannot is a skip; both happen. A cut-off JPEG is refused, never handed on with its missing
    // rows painted grey.
    const decodedCount = (mutation: Mutation) => made.filter((m) => m.mutation === mutation && outcome.get(m.path) === 'decoded').length;
    expect(decodedCount('truncate')).toBe(0);
    expect(images.length).toBeGreaterThan(VARIANTS / 4);
    expect(skips.length).toBeGreaterThan(VARIANTS / 4);
  });
});
