import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Backbone features on disk, one file per image, keyed by what determines them: the model, its
 * weights, preprocessing, input size, resize mode and decoder (the folder: the fast decoder's
 * bilinear pixels are not sharp's lanczos3 ones, so neither may stand in for the other) and the
 * image file's content (the file name). Each entry carries its length and a checksum: a torn or
 * corrupt entry reads as missing and is recomputed, never trusted.
 */
export class FeatureCache {
  readonly dir: string;
  hits = 0;
  misses = 0;
  corrupt = 0;

  /** The cache under `root` for features determined by `identity`. */
  constructor(root: string, identity: Record<string, unknown>);
  /** The cache in the folder `dir` as it is, whatever identity named it (to inspect what a run wrote). */
  constructor(dir: string);
  constructor(root: string, identity?: Record<string, unknown>) {
    this.dir = identity ? join(root, createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 24)) : root;
  }

  /** The content hash that names an image's entry. */
  static async contentKey(path: string): Promise<string> {
    return createHash('sha256').update(await readFile(path)).digest('hex');
  }

  async get(key: string, length: number): Promise<Float32Array | null> {
    const bytes = await readFile(join(this.dir, `${key}.f32`)).catch(() => null);
    const entry = bytes ? decodeEntry(bytes, length) : null;
    if (bytes && !entry) this.corrupt++;
    if (entry) this.hits++;
    else this.misses++;
    return entry;
  }

  async set(key: string, features: Float32Array): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const path = join(this.dir, `${key}.f32`);
    const temporary = `${path}.${process.pid}.tmp`;
    await writeFile(temporary, encodeEntry(features));
    await rename(temporary, path);
  }
}

/** [length u32][checksum u32][float32 × length] */
function encodeEntry(features: Float32Array): Uint8Array {
  const out = new Uint8Array(8 + features.byteLength);
  const view = new DataView(out.buffer);
  const payload = new Uint8Array(features.buffer, features.byteOffset, features.byteLength);
  view.setUint32(0, features.length, true);
  view.setUint32(4, checksum(payload), true);
  out.set(payload, 8);
  return out;
}

function decodeEntry(bytes: Uint8Array, length: number): Float32Array | null {
  if (bytes.length !== 8 + 4 * length) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== length) return null;
  // A copy of just the payload: Node's Buffer.slice would share (and expose) the whole pool.
  const payload = new Uint8Array(bytes.subarray(8));
  if (checksum(payload) !== view.getUint32(4, true)) return null;
  return new Float32Array(payload.buffer);
}

function checksum(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
