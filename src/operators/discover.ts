import { open, realpath, stat } from 'node:fs/promises';
import { basename, extname, join, relative, sep } from 'node:path';
import fg from 'fast-glob';
import pLimit from 'p-limit';
import { defer, type Observable } from 'rxjs';
import type { ClassInfo, Dataset, Sample, Skip } from '../core/types.js';

export interface DiscoverOptions {
  /** Class folders to leave out, by folder name or display name (e.g. `257.clutter`, `BACKGROUND_Google`). */
  exclude?: readonly string[];
}

/** File endings sharp decodes with its prebuilt libvips. */
export const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.jpe', '.png', '.gif', '.webp', '.tif', '.tiff', '.avif']);

/** Folder depth searched below the dataset root (class folder plus nested folders). */
const MAX_DEPTH = 16;

/** Caltech-256 prefixes class folders with a number (`001.ak47`); the display name drops it. */
export function displayName(folder: string): string {
  return folder.replace(/^\d+\./, '');
}

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

async function readHead(path: string): Promise<Uint8Array> {
  const file = await open(path, 'r');
  try {
    const head = new Uint8Array(12);
    const { bytesRead } = await file.read(head, 0, 12, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
}

/** Why a file cannot be used as an image, or else its real path (symlinks resolved). */
async function inspect(path: string): Promise<{ reason: string } | { real: string }> {
  if (basename(path).startsWith('.')) return { reason: 'hidden file' };
  if (!IMAGE_EXTENSIONS.has(extname(path).toLowerCase())) return { reason: 'not an image (extension)' };
  try {
    if (!sniffImageFormat(await readHead(path))) return { reason: 'not an image (content)' };
    return { real: await realpath(path) };
  } catch (error) {
    return { reason: `unreadable (${(error as NodeJS.ErrnoException).code ?? String(error)})` };
  }
}

/**
 * A Caltech archive unpacks to one folder (`256_ObjectCategories`) that holds the class folders;
 * accept that folder, or its parent when it is the parent's only folder (beside loose files such
 * as a README).
 */
function classRoot(root: string, entries: string[]): string {
  const folders = new Set(entries.filter((p) => p.includes('/')).map((p) => p.slice(0, p.indexOf('/'))));
  const only = folders.size === 1 ? [...folders][0]! : null;
  return only && /_ObjectCategories$/.test(only) ? join(root, only) : root;
}

/**
 * Source: scans a folder-per-class dataset (Caltech-256, Caltech-101 or any ImageFolder tree) and
 * emits one {@link Dataset}. The class of a file is the top-level folder it sits under; images in
 * folders nested inside a class (Caltech-256's `056.dog/greg/`) belong to that class, as in
 * torchvision's ImageFolder. Files directly in the root belong to no class and are skipped. Classes
 * are sorted by folder name so label indices are the same on every machine.
 */
export function discover(root: string, options: DiscoverOptions = {}): Observable<Dataset> {
  return defer(async () => {
    const info = await stat(root).catch(() => null);
    if (!info) throw new Error(`dataset folder not found: ${root}`);
    if (!info.isDirectory()) throw new Error(`dataset path is not a folder: ${root}`);
    // Directories come back marked with '/', so whatever else is listed (files, broken links) is
    // judged by rejectReason and counted; symlinked folders are followed to a bounded depth, so a
    // link loop ends instead of spinning.
    const scan = async (dir: string) =>
      (await fg('**/*', { cwd: dir, onlyFiles: false, markDirectories: true, dot: true, deep: MAX_DEPTH, suppressErrors: true })).filter(
        (entry) => !entry.endsWith('/'),
      );
    let base = root;
    let files = await scan(base);
    const nestedRoot = classRoot(root, files);
    if (nestedRoot !== root) {
      base = nestedRoot;
      files = await scan(base);
    }
    files.sort();

    const excluded = new Set(options.exclude ?? []);
    const isExcluded = (file: string) => {
      const folder = file.slice(0, file.indexOf('/'));
      return excluded.has(folder) || excluded.has(displayName(folder));
    };
    files = files.filter((file) => !file.includes('/') || !isExcluded(file));
    const limit = pLimit(32);
    const verdicts = await Promise.all(
      files.map((file) => limit(() => (file.includes('/') ? inspect(join(base, file)) : { reason: 'not inside a class folder' }))),
    );
    const byClass = new Map<string, string[]>();
    const skipped: Skip[] = [];
    const seen = new Map<string, string>();
    for (const [i, file] of files.entries()) {
      const path = join(base, file);
      const verdict = verdicts[i]!;
      const folder = file.slice(0, file.indexOf('/'));
      if ('reason' in verdict) {
        skipped.push({ path, reason: verdict.reason });
        continue;
      }
      const first = seen.get(verdict.real);
      if (first) {
        skipped.push({ path, reason: `same file as ${first} (symlink)` });
        continue;
      }
      seen.set(verdict.real, path);
      const list = byClass.get(folder) ?? [];
      list.push(path);
      byClass.set(folder, list);
    }

    const folders = [...byClass.keys()].sort();
    const classes: ClassInfo[] = folders.map((id, index) => ({ id, name: displayName(id), index }));
    const samples: Sample[] = classes.flatMap((c) => byClass.get(c.id)!.map((path) => ({ path, label: c.index })));
    if (classes.length === 0) throw new Error(`no images found in class folders under ${root}`);
    return { root: base, classes, samples, skipped };
  });
}

/** A path relative to the dataset root, with forward slashes, as written to manifests. */
export function datasetRelative(root: string, path: string): string {
  return relative(root, path).split(sep).join('/');
}
