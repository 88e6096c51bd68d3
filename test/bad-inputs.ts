/**
 * Builds, at test time, a folder-per-class dataset holding every kind of dirty input issue #7 lists
 * (nothing binary-corrupt is committed): real fixture photos, odd-but-valid images with known
 * colours, broken files, junk files, an empty class, a one-image class, a hidden folder and a
 * symlink loop.
 */
import { chmod, cp, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import sharp, { type Sharp } from 'sharp';
import { createRandom } from '../src/core/random.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/caltech101-mini/101_ObjectCategories', import.meta.url));

/** Real fixture JPEGs of one class, sorted (helpers.ts has the same, but needs a running vitest). */
async function fixtureImages(cls: string): Promise<string[]> {
  return (await readdir(join(FIXTURES, cls))).sort().map((f) => join(FIXTURES, cls, f));
}

export type Rgb = [number, number, number];

/** A pixel that must come out of decoding (at fractions of the output side) with this colour. */
export interface Probe {
  at: [x: number, y: number];
  rgb: Rgb;
}

export interface BadInput {
  /** The case as the issue names it. */
  name: string;
  path: string;
  /** What discover does with it: accept it, or skip it with a reason matching this. */
  discover: 'accepted' | RegExp;
  /** The reason split gives for leaving it out under the dataset's protocol, if it does. */
  split?: RegExp;
  /**
   * What decode does with the file on its own: decode it (colours checked by probes, or by closeness
   * to decoding the photo `like`) or skip it with a reason.
   */
  decode: { probes: Probe[]; like?: string; note?: string } | RegExp | null;
  /** What sharp's metadata says the file is, proving the generator built the case it claims. */
  built?: Record<string, unknown>;
}

export interface BadDataset {
  root: string;
  /** Classes of real photos, so a protocol can train on this dataset. */
  photoClasses: string[];
  cases: BadInput[];
  /** The per-class protocol the one-image class is too small for. */
  protocol: string;
}

export const RED: Rgb = [255, 0, 0];
export const GREEN: Rgb = [0, 255, 0];
export const BLUE: Rgb = [0, 0, 255];
export const WHITE: Rgb = [255, 255, 255];

/** A width×height image in four coloured quadrants (top-left, top-right, bottom-left, bottom-right). */
export function quadrants(width: number, height: number, colours: [Rgb, Rgb, Rgb, Rgb], alpha?: number): Sharp {
  const channels = alpha === undefined ? 3 : 4;
  const pixels = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const colour = colours[(y < height / 2 ? 0 : 2) + (x < width / 2 ? 0 : 1)];
      const i = (y * width + x) * channels;
      pixels.set(colour, i);
      if (alpha !== undefined) pixels[i + 3] = alpha;
    }
  }
  return sharp(pixels, { raw: { width, height, channels } });
}

const FOUR: [Rgb, Rgb, Rgb, Rgb] = [RED, GREEN, BLUE, WHITE];
/** Probes for {@link FOUR} displayed as stored. */
const FOUR_PROBES: Probe[] = [
  { at: [0.25, 0.25], rgb: RED },
  { at: [0.75, 0.25], rgb: GREEN },
  { at: [0.25, 0.75], rgb: BLUE },
  { at: [0.75, 0.75], rgb: WHITE },
];

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/**
 * A decompression bomb: a few hundred bytes whose header declares side×side 8-bit RGB (20000² =
 * 1.2 GB decoded). Only the first row's pixel data is present; a decoder that trusted the header
 * would allocate the whole image first.
 */
export function pngBomb(side = 20_000): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(side, 0);
  header.writeUInt32BE(side, 4);
  header.set([8, 2, 0, 0, 0], 8); // bit depth 8, colour type RGB, deflate, no filter, no interlace
  const firstRow = Buffer.alloc(1 + side * 3);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, pngChunk('IHDR', header), pngChunk('IDAT', deflateSync(firstRow, { level: 9 })), pngChunk('IEND', Buffer.alloc(0))]);
}

/** Seeded random bytes that start like no image format. */
function junk(length: number, seed: number): Buffer {
  const random = createRandom(seed);
  const bytes = Buffer.from(Array.from({ length }, () => Math.floor(random() * 256)));
  bytes[0] = 0x42;
  return bytes;
}

/** Builds the dirty dataset under `dir/dataset`; `photos` real photos per photo class. */
export async function buildBadDataset(dir: string, photos = 6): Promise<BadDataset> {
  const root = join(dir, 'dataset');
  const mixed = join(root, 'mixed');
  for (const folder of ['photos-a', 'photos-b', 'mixed', 'lonely', 'empty-class']) await mkdir(join(root, folder), { recursive: true });
  const leopards = await fixtureImages('Leopards');
  const watches = await fixtureImages('watch');
  for (let i = 0; i < photos; i++) {
    await cp(leopards[i]!, join(root, 'photos-a', `a${i}.jpg`));
    await cp(watches[i]!, join(root, 'photos-b', `b${i}.jpg`));
  }
  const cases: BadInput[] = [];
  const add = async (name: string, rel: string, content: Buffer | string | Promise<Buffer>, discover: BadInput['discover'], decode: BadInput['decode'], extra: Pick<BadInput, 'split' | 'built'> = {}) => {
    const path = join(root, rel);
    await writeFile(path, await content);
    cases.push({ name, path, discover, decode, ...extra });
  };

  const notImage = /^not an image \(content\)$/;
  await add('zero-byte file', 'mixed/zero.jpg', Buffer.alloc(0), /^empty file \(0 bytes\)$/, /^empty file \(0 bytes\)$/);
  const photo = await readFile(leopards[0]!);
  await add('truncated JPEG', 'mixed/truncated.jpg', photo.subarray(0, photo.length >> 1), 'accepted', /^cannot decode: (.*premature end of JPEG|damaged jpeg data)/, { built: { format: 'jpeg' } });
  await add('random bytes named .jpg', 'mixed/random.jpg', junk(4096, 7), notImage, notImage);
  await add('text file named .png', 'mixed/text.png', 'this is a text file, not a PNG\n', notImage, notImage);
  await add('PNG with alpha', 'mixed/alpha.png', quadrants(40, 40, FOUR, 128).png().toBuffer(), 'accepted', { probes: FOUR_PROBES, note: 'alpha dropped' }, { built: { hasAlpha: true, channels: 4 } });
  await add('16-bit PNG', 'mixed/deep16.png', quadrants(40, 40, FOUR).toColourspace('rgb16').png().toBuffer(), 'accepted', { probes: FOUR_PROBES }, { built: { depth: 'ushort' } });
  await add('palette PNG', 'mixed/palette.png', quadrants(40, 40, FOUR).png({ palette: true, colours: 4 }).toBuffer(), 'accepted', { probes: FOUR_PROBES }, { built: { isPalette: true } });
  // Saturated sRGB primaries lie outside the CMYK gamut, so the CMYK case is a real photo.
  await add('CMYK JPEG', 'mixed/cmyk.jpg', sharp(leopards[0]!).toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer(), 'accepted', { probes: [], like: leopards[0]! }, { built: { space: 'cmyk', channels: 4 } });
  const grey: [Rgb, Rgb, Rgb, Rgb] = [[30, 30, 30], [90, 90, 90], [160, 160, 160], [230, 230, 230]];
  await add('grayscale JPEG', 'mixed/gray.jpg', quadrants(40, 40, grey).toColourspace('b-w').jpeg({ quality: 95 }).toBuffer(), 'accepted', {
    probes: grey.map((rgb, i) => ({ at: [i % 2 ? 0.75 : 0.25, i < 2 ? 0.25 : 0.75], rgb })),
  }, { built: { channels: 1, format: 'jpeg' } });
  const [red, blue] = await Promise.all([RED, BLUE].map((rgb) => quadrants(16, 16, [rgb, rgb, rgb, rgb]).png().toBuffer()));
  await add('animated GIF', 'mixed/animated.gif', sharp([red!, blue!], { join: { animated: true } }).gif({ delay: [100, 100] }).toBuffer(), 'accepted', {
    probes: [{ at: [0.5, 0.5], rgb: RED }],
    note: 'first frame (red; the second is blue)',
  }, { built: { pages: 2, format: 'gif' } });
  await add('WebP', 'mixed/image.webp', quadrants(40, 40, FOUR).webp({ lossless: true }).toBuffer(), 'accepted', { probes: FOUR_PROBES }, { built: { format: 'webp' } });
  await add('TIFF', 'mixed/image.tiff', quadrants(40, 40, FOUR).tiff().toBuffer(), 'accepted', { probes: FOUR_PROBES }, { built: { format: 'tiff' } });
  // Stored 60×40; orientation 6 means "rotate 90° clockwise to display": the stored bottom-left
  // (blue) is shown top-left, the stored top-left (red) top-right.
  await add('EXIF-rotated JPEG', 'mixed/exif-rotated.jpg', quadrants(60, 40, FOUR).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer(), 'accepted', {
    probes: [
      { at: [0.25, 0.25], rgb: BLUE },
      { at: [0.75, 0.25], rgb: RED },
      { at: [0.25, 0.75], rgb: WHITE },
      { at: [0.75, 0.75], rgb: GREEN },
    ],
    note: 'orientation 6 applied',
  }, { built: { orientation: 6, width: 60, height: 40 } });
  await add('20000×20000 image header', 'mixed/bomb.png', pngBomb(), 'accepted', /^cannot decode: Input image exceeds pixel limit/, { built: { width: 20_000, height: 20_000 } });
  await add('Thumbs.db', 'mixed/Thumbs.db', junk(512, 8), /^not an image \(extension\)$/, notImage);
  await add('.DS_Store', 'mixed/.DS_Store', Buffer.from('\0\0\0\x01Bud1'), /^hidden file$/, notImage);
  await add('RENAME2', 'mixed/RENAME2', 'rename this file\n', /^not an image \(extension\)$/, notImage);
  await add('class folder with one image', 'lonely/only.jpg', photo, 'accepted', { probes: [], like: leopards[0]! }, { split: /^class has fewer than 4 images, as per-class:3 needs$/ });

  await symlink('..', join(mixed, 'loop'));
  cases.push({ name: 'symlink loop', path: join(mixed, 'loop'), discover: new RegExp(`^symlink loop \\(leads back to ${literal(root)}\\)$`), decode: null });
  cases.push({ name: 'empty class folder', path: join(root, 'empty-class'), discover: /^class folder without images$/, decode: null });
  // Jupyter leaves these beside notebooks; an image inside must not make it a class.
  await mkdir(join(root, '.ipynb_checkpoints'));
  await cp(leopards[0]!, join(root, '.ipynb_checkpoints', 'a0-checkpoint.jpg'));
  cases.push({ name: 'hidden folder', path: join(root, '.ipynb_checkpoints'), discover: /^hidden folder$/, decode: null });
  // Caltech-256's 056.dog/greg/vision309 is an empty folder nested in a class: nothing to report.
  await mkdir(join(root, 'photos-a', 'greg', 'vision309'), { recursive: true });
  return { root, photoClasses: ['photos-a', 'photos-b'], cases, protocol: 'per-class:3' };
}

function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * A small dataset with a mode-000 image and a mode-000 class folder, for a process that cannot
 * bypass permissions (root can: test with another user). Every folder above stays traversable.
 */
export async function buildUnreadableDataset(dir: string): Promise<{ root: string; lockedFile: string; lockedFolder: string }> {
  const root = join(dir, 'unreadable');
  const [photo, other] = await fixtureImages('watch');
  await mkdir(join(root, 'watch'), { recursive: true });
  await mkdir(join(root, 'sealed'), { recursive: true });
  await cp(photo!, join(root, 'watch/ok.jpg'));
  await cp(photo!, join(root, 'watch/locked.jpg'));
  await cp(other!, join(root, 'sealed/inside.jpg'));
  await chmod(join(root, 'watch/locked.jpg'), 0o000);
  await chmod(join(root, 'sealed'), 0o000);
  for (const folder of [dir, root, join(root, 'watch')]) await chmod(folder, 0o755);
  return { root, lockedFile: join(root, 'watch/locked.jpg'), lockedFolder: join(root, 'sealed') };
}
