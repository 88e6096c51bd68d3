import { constants } from 'node:fs';
import { access, open, readdir, realpath, stat } from 'node:fs/promises';
import { basename, extname, join, relative, sep } from 'node:path';
import fg from 'fast-glob';
import pLimit from 'p-limit';
import { defer, type Observable } from 'rxjs';
import type { ClassInfo, Dataset, Sample, Skip } from '../core/types.js';
import { sniffImageFormat } from '../decode/header.js';

export interface DiscoverOptions {
  /** Class folders to leave out, by folder name or display name (e.g. `257.clutter`, `BACKGROUND_Google`). */
  exclude?: readonly string[];
}

/** File endings sharp decodes with its prebuilt libvips. */
export const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.jpe', '.png', '.gif', '.webp', '.tif', '.tiff', '.avif']);

/** Caltech-256 prefixes class folders with a number (`001.ak47`); the display name drops it. */
export function displayName(folder: string): string {
  return folder.replace(/^\d+\./, '');
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
    const head = await readHead(path);
    if (head.length === 0) return { reason: 'empty file (0 bytes)' };
    if (!sniffImageFormat(head)) return { reason: 'not an image (content)' };
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
async function classRoot(root: string): Promise<string> {
  const folders = (await readdir(root, { withFileTypes: true })).filter((e) => e.isDirectory());
  const only = folders.length === 1 ? folders[0]!.name : null;
  return only && /_ObjectCategories$/.test(only) ? join(root, only) : root;
}

interface Listing {
  /** Paths relative to the scanned folder, of everything that is not a folder. */
  files: string[];
  /** The top-level folders entered (the class folders). */
  folders: string[];
  /** Folders passed over: hidden, unreadable, or symlinks back into the tree. */
  skipped: Skip[];
}

/** Why a folder cannot be listed, or null when it can. */
async function unreadable(dir: string): Promise<string | null> {
  return access(dir, constants.R_OK | constants.X_OK).then(
    () => null,
    (error: NodeJS.ErrnoException) => `unreadable folder (${error.code ?? String(error)})`,
  );
}

/**
 * Lists a tree with fast-glob without following symlinks, so a link loop cannot repeat files;
 * symlinked folders are then followed one by one, each real folder entered once: a link back to an
 * enclosing folder (a loop) or to a folder already listed is one counted skip. Hidden and
 * unreadable folders are counted skips too (fast-glob alone would pass over them silently).
 */
async function listTree(base: string, isExcluded: (folder: string) => boolean): Promise<Listing> {
  const listing: Listing = { files: [], folders: [], skipped: [] };
  const entered = new Map<string, string>([[await realpath(base), base]]);
  /** Lists `dir` and what is below it; false when `dir` itself cannot be read. */
  const scan = async (dir: string, rel: string, ancestors: ReadonlySet<string>): Promise<boolean> => {
    const refused = await unreadable(dir);
    if (refused) {
      listing.skipped.push({ path: dir, reason: refused });
      return false;
    }
    const entries = await fg('**', { cwd: dir, onlyFiles: false, dot: true, followSymbolicLinks: false, suppressErrors: true, objectMode: true });
    entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const passedOver: string[] = [];
    const under = (path: string) => passedOver.some((folder) => path.startsWith(`${folder}/`));
    /** Real paths of the folders enclosing each listed folder, for telling loops from repeats. */
    const chain = new Map<string, ReadonlySet<string>>([['', ancestors]]);
    const parentChain = (path: string) => chain.get(path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '') ?? ancestors;
    for (const entry of entries) {
      if (under(entry.path)) continue;
      const path = join(dir, entry.path);
      const relPath = rel ? `${rel}/${entry.path}` : entry.path;
      const top = !rel && !entry.path.includes('/');
      const isLink = entry.dirent.isSymbolicLink();
      const isFolder = entry.dirent.isDirectory() || (isLink && (await stat(path).then((s) => s.isDirectory(), () => false)));
      if (!isFolder) {
        listing.files.push(relPath);
        continue;
      }
      if (top && isExcluded(entry.name)) {
        passedOver.push(entry.path);
        continue;
      }
      if (entry.name.startsWith('.')) {
        passedOver.push(entry.path);
        listing.skipped.push({ path, reason: 'hidden folder' });
        continue;
      }
      const real = await realpath(path);
      const first = entered.get(real);
      if (first !== undefined) {
        passedOver.push(entry.path);
        const reason = parentChain(entry.path).has(real) ? `symlink loop (leads back to ${first})` : `same folder as ${first} (symlink)`;
        listing.skipped.push({ path, reason });
        continue;
      }
      entered.set(real, path);
      const enclosing = new Set(parentChain(entry.path)).add(real);
      if (isLink) {
        // fast-glob did not enter it: list it on its own
        passedOver.push(entry.path);
        if ((await scan(path, relPath, enclosing)) && top) listing.folders.push(entry.name);
        continue;
      }
      const refusedHere = await unreadable(path);
      if (refusedHere) {
        passedOver.push(entry.path);
        listing.skipped.push({ path, reason: refusedHere });
        continue;
      }
      chain.set(entry.path, enclosing);
      if (top) listing.folders.push(entry.name);
    }
    return true;
  };
  await scan(base, '', new Set(entered.keys()));
  return listing;
}

/** Fails with one line unless `root` is an existing folder. */
export async function assertDatasetFolder(root: string): Promise<void> {
  const info = await stat(root).catch(() => null);
  if (!info) throw new Error(`dataset folder not found: ${root}`);
  if (!info.isDirectory()) throw new Error(`dataset path is not a folder: ${root}`);
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
    await assertDatasetFolder(root);
    const base = await classRoot(root).catch((error: NodeJS.ErrnoException) => {
      throw new Error(`dataset folder not readable: ${root} (${error.code ?? String(error)})`);
    });
    const excluded = new Set(options.exclude ?? []);
    const listing = await listTree(base, (folder) => excluded.has(folder) || excluded.has(displayName(folder)));
    const files = listing.files.sort();
    const limit = pLimit(32);
    const verdicts = await Promise.all(
      files.map((file) => limit(() => (file.includes('/') ? inspect(join(base, file)) : { reason: 'not inside a class folder' }))),
    );
    const byClass = new Map<string, string[]>();
    const skipped: Skip[] = [...listing.skipped];
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

    for (const folder of listing.folders) {
      if (!byClass.has(folder)) skipped.push({ path: join(base, folder), reason: 'class folder without images' });
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
