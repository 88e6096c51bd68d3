/**
 * Reads what a JPEG or PNG says about itself before any pixel is decoded — dimensions, EXIF
 * orientation, colour model, bit depth, embedded ICC profile, whether the data is complete — and
 * decides whether the fast decoder may take the file. Only files whose pixels the fast decoder
 * turns into the same 8-bit sRGB as sharp qualify; everything else goes to sharp, which handles
 * colour management, CMYK, 16 bits, alpha and the other formats.
 */

/** A file the fast decoder takes, with what the decode needs from its header. */
export interface FastHeader {
  format: 'jpeg' | 'png';
  width: number;
  height: number;
  /** EXIF orientation 1–8 (1 when absent or out of range, as libvips treats it). */
  orientation: number;
}

export type Route = { fast: true; header: FastHeader } | { fast: false; reason: string; width?: number; height?: number };

const sharpFor = (reason: string, size?: { width: number; height: number }): Route => ({ fast: false, reason, ...size });

const ascii = (bytes: Uint8Array, from: number, to: number) => String.fromCharCode(...bytes.subarray(from, Math.min(to, bytes.length)));

/** Big-endian readers that return -1 past the end instead of throwing. */
const u16 = (b: Uint8Array, at: number) => (at + 2 <= b.length ? (b[at]! << 8) | b[at + 1]! : -1);
const u32 = (b: Uint8Array, at: number) => (at + 4 <= b.length ? b[at]! * 0x1000000 + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) : -1);

/** The image format named by a file's first bytes, or null when they match none sharp reads. */
export function sniffImageFormat(head: Uint8Array): string | null {
  const ascii = (from: number, to: number) => String.fromCharCode(...head.subarray(from, to));
  if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'jpeg';
  if (head[0] === 0x89 && ascii(1, 4) === 'PNG') return 'png';
  if (ascii(0, 4) === 'GIF8') return 'gif';
  if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  if (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*') return 'tiff';
  if (ascii(4, 8) === 'ftyp' && /^(avif|avis|heic|heix|mif1)$/.test(ascii(8, 12))) return 'heif';
  return null;
}

/** Which route `bytes` (a whole image file) takes, and why when it is sharp's. */
export function route(bytes: Uint8Array): Route {
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return routeJpeg(bytes);
  if (bytes[0] === 0x89 && ascii(bytes, 1, 4) === 'PNG') return routePng(bytes);
  return sharpFor('not JPEG or PNG');
}

/**
 * The JPEG frame types libjpeg-turbo and the fast decoder agree on: baseline (C0), extended
 * sequential (C1) and progressive (C2) Huffman-coded frames. Lossless, hierarchical and
 * arithmetic-coded frames go to sharp.
 */
const FAST_FRAMES = new Set([0xc0, 0xc1, 0xc2]);
const isFrame = (marker: number) => marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;

function routeJpeg(bytes: Uint8Array): Route {
  let at = 2;
  let frame: { marker: number; precision: number; height: number; width: number; components: number } | null = null;
  let orientation = 1;
  let exifSeen = false;
  const icc: Uint8Array[] = [];
  let adobeTransform = -1;
  for (;;) {
    if (bytes[at] !== 0xff) return sharpFor('JPEG markers unreadable');
    while (bytes[at] === 0xff) at++; // fill bytes
    const marker = bytes[at++];
    if (marker === undefined) return sharpFor('JPEG header cut short');
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue; // markers without a segment
    if (marker === 0xd9) return sharpFor('JPEG without a frame');
    const length = u16(bytes, at);
    if (length < 2 || at + length > bytes.length) return sharpFor('JPEG header cut short');
    const segment = bytes.subarray(at + 2, at + length);
    if (marker === 0xda) {
      if (!frame) return sharpFor('JPEG scan before its frame');
      const size = { width: frame.width, height: frame.height };
      if (!FAST_FRAMES.has(frame.marker)) return sharpFor('lossless, hierarchical or arithmetic-coded JPEG', size);
      if (frame.precision !== 8) return sharpFor(`${frame.precision}-bit JPEG`, size);
      if (frame.width === 0 || frame.height === 0) return sharpFor('JPEG without dimensions in its frame header', size);
      if (frame.components === 4) return sharpFor('CMYK JPEG', size);
      if (frame.components !== 1 && frame.components !== 3) return sharpFor(`JPEG with ${frame.components} components`, size);
      // Adobe's transform 0 on three components means RGB stored as is, not YCbCr.
      if (frame.components === 3 && adobeTransform === 0) return sharpFor('RGB-coded JPEG', size);
      if (icc.length > 0 && !isSrgbProfile(concat(icc))) return sharpFor('ICC profile other than sRGB', size);
      // A cut-off file must never be decoded with its missing rows painted grey: the data must
      // end in an end-of-image marker. In entropy-coded data 0xFF is always followed by 0x00 or
      // a restart marker, so FF D9 after the first scan is the real end.
      if (lastIndexOfEoi(bytes) < at + length) return sharpFor('JPEG without its end marker (cut short?)', size);
      return { fast: true, header: { format: 'jpeg', width: frame.width, height: frame.height, orientation } };
    }
    if (isFrame(marker) && !frame) frame = { marker, precision: segment[0] ?? 0, height: u16(segment, 1), width: u16(segment, 3), components: segment[5] ?? 0 };
    else if (marker === 0xe1 && !exifSeen && ascii(segment, 0, 6) === 'Exif\0\0') {
      exifSeen = true;
      orientation = exifOrientation(segment.subarray(6));
    } else if (marker === 0xe2 && ascii(segment, 0, 12) === 'ICC_PROFILE\0') icc[segment[12] ?? 0] = segment.subarray(14);
    else if (marker === 0xee && ascii(segment, 0, 5) === 'Adobe') adobeTransform = segment[11] ?? -1;
    at += length;
  }
}

function lastIndexOfEoi(bytes: Uint8Array): number {
  for (let i = bytes.length - 2; i >= 0; i--) if (bytes[i] === 0xff && bytes[i + 1] === 0xd9) return i;
  return -1;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const present = parts.filter(Boolean);
  const out = new Uint8Array(present.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of present) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** The orientation tag (0x0112) of IFD0 in an EXIF TIFF block; 1 when absent or invalid. */
function exifOrientation(tiff: Uint8Array): number {
  const little = ascii(tiff, 0, 2) === 'II';
  if (!little && ascii(tiff, 0, 2) !== 'MM') return 1;
  const view = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  const read16 = (at: number) => (at + 2 <= tiff.length ? view.getUint16(at, little) : -1);
  const read32 = (at: number) => (at + 4 <= tiff.length ? view.getUint32(at, little) : -1);
  const ifd = read32(4);
  const entries = read16(ifd);
  for (let i = 0; i < entries; i++) {
    const entry = ifd + 2 + i * 12;
    if (read16(entry) !== 0x0112) continue;
    const value = read16(entry + 2) === 3 ? read16(entry + 8) : -1;
    return value >= 1 && value <= 8 ? value : 1;
  }
  return 1;
}

/**
 * Whether an ICC profile describes sRGB, by its description tag ('desc' text of v2 profiles,
 * 'mluc' of v4): pixels tagged sRGB are already what the model gets, so they need no conversion.
 */
export function isSrgbProfile(profile: Uint8Array): boolean {
  const tags = u32(profile, 128);
  for (let i = 0; i < tags && 132 + 12 * (i + 1) <= profile.length; i++) {
    const entry = 132 + 12 * i;
    if (ascii(profile, entry, entry + 4) !== 'desc') continue;
    const at = u32(profile, entry + 4);
    const type = ascii(profile, at, at + 4);
    let text = '';
    if (type === 'desc') text = ascii(profile, at + 12, at + 12 + Math.min(u32(profile, at + 8), 64));
    else if (type === 'mluc') {
      const length = u32(profile, at + 20);
      const offset = u32(profile, at + 24);
      for (let k = 0; k + 1 < Math.min(length, 128); k += 2) text += String.fromCharCode(u16(profile, at + offset + k));
    }
    return /^sRGB\b/i.test(text);
  }
  return false;
}

function routePng(bytes: Uint8Array): Route {
  if (ascii(bytes, 12, 16) !== 'IHDR') return sharpFor('PNG header unreadable');
  const width = u32(bytes, 16);
  const height = u32(bytes, 20);
  const depth = bytes[24] ?? 0;
  const colour = bytes[25] ?? 0;
  const size = { width, height };
  if (width <= 0 || height <= 0) return sharpFor('PNG header unreadable');
  if (depth === 16) return sharpFor('16-bit PNG', size);
  // 4 and 6 carry alpha: sharp drops it exactly as the rest of rxcnn expects (the fast decoder
  // would premultiply it into the colours before resizing).
  if (colour === 4 || colour === 6) return sharpFor('PNG with alpha', size);
  for (let at = 8; ; ) {
    const length = u32(bytes, at);
    const type = ascii(bytes, at + 4, at + 8);
    if (length < 0 || at + 12 + length > bytes.length) return sharpFor('PNG cut short', size);
    if (type === 'IDAT' || type === 'IEND') break;
    if (type === 'tRNS') return sharpFor('PNG with transparency', size);
    if (type === 'iCCP') return sharpFor('PNG with an ICC profile', size);
    if (type === 'eXIf') return sharpFor('PNG with EXIF', size);
    at += 12 + length;
  }
  // As for JPEG: a cut-off PNG must end up refused, never decoded with missing rows.
  if (ascii(bytes, bytes.length - 8, bytes.length - 4) !== 'IEND') return sharpFor('PNG without its end chunk (cut short?)', size);
  return { fast: true, header: { format: 'png', width, height, orientation: 1 } };
}
