import { createWriteStream } from 'node:fs';
import { mkdir, readdir, realpath, symlink } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, posix, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';
import yauzl from 'yauzl';

/** The kinds of archive rxcnn unpacks, by file name. */
export function archiveKind(file: string): 'tar' | 'zip' | null {
  if (/\.(tar|tar\.gz|tgz)$/i.test(file)) return 'tar';
  if (/\.zip$/i.test(file)) return 'zip';
  return null;
}

/**
 * Why an entry would land outside the folder it is unpacked into, or null. Stricter than needed (a
 * `..` that stays inside is refused too): the published archives have none, so one is a sign of a
 * crafted file. A symlink's target counts from the link's folder; a hard link's from the archive root.
 */
export function escapeReason(path: string, link?: { kind: 'symlink' | 'hard link'; target: string }): string | null {
  const absolute = (p: string) => isAbsolute(p) || posix.isAbsolute(p) || /^[A-Za-z]:/.test(p);
  if (absolute(path)) return 'an absolute path';
  if (path.split(/[/\\]/).includes('..')) return "a path with '..'";
  if (!link) return null;
  if (absolute(link.target)) return `a ${link.kind} to an absolute path (${link.target})`;
  const resolved = posix.normalize(link.kind === 'symlink' ? posix.join(posix.dirname(path), link.target) : link.target);
  if (resolved === '..' || resolved.startsWith('../')) return `a ${link.kind} pointing outside (${link.target})`;
  return null;
}

class RefusedEntry extends Error {}

const refuse = (archive: string, entry: string, what: string) => new RefusedEntry(`refusing ${basename(archive)}: entry "${entry}" ${what}; nothing was unpacked`);
const reaching = (reason: string) => `is ${reason}, which would reach outside the dataset folder`;

async function untar(archive: string, dest: string): Promise<void> {
  let problem: Error | null = null;
  await tar.x({
    file: archive,
    cwd: dest,
    preserveOwner: false,
    filter: (path, entry) => {
      if (problem) return false;
      const { type, linkpath } = entry as tar.ReadEntry;
      const link = type === 'SymbolicLink' ? ({ kind: 'symlink', target: String(linkpath ?? '') } as const) : type === 'Link' ? ({ kind: 'hard link', target: String(linkpath ?? '') } as const) : undefined;
      const reason = escapeReason(path, link);
      if (reason) problem = refuse(archive, path, reaching(reason));
      return !problem;
    },
    // tar's own guards (links in the path, paths it had to rewrite) and a damaged archive surface as warnings
    onwarn: (code, message, data) => {
      if (code === 'TAR_ENTRY_INFO' || problem) return;
      const entry = (data as { entry?: { path?: string } }).entry?.path;
      problem = entry ? refuse(archive, entry, `was refused by tar (${message})`) : new Error(`${basename(archive)} is damaged (${message}); delete it and fetch again`);
    },
  });
  if (problem) throw problem;
}

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

async function unzip(archive: string, dest: string): Promise<void> {
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(archive, { strictFileNames: true, validateEntrySizes: true });
  } catch (error) {
    throw new Error(`${basename(archive)} is damaged (${(error as Error).message}); delete it and fetch again`);
  }
  // symlinks are made last, so no file of the archive can be written through one of them
  const links: { path: string; target: string }[] = [];
  try {
    for await (const entry of zip.eachEntry()) {
      const name = entry.fileName;
      const isLink = ((entry.externalFileAttributes >>> 16) & S_IFMT) === S_IFLNK;
      const target = join(dest, name);
      if (name.endsWith('/')) {
        await mkdir(target, { recursive: true });
        continue;
      }
      await mkdir(dirname(target), { recursive: true });
      const stream = await zip.openReadStreamPromise(entry);
      if (isLink) {
        const chunks: Buffer[] = [];
        for await (const chunk of stream) chunks.push(chunk as Buffer);
        const linkTarget = Buffer.concat(chunks).toString('utf8');
        const reason = escapeReason(name, { kind: 'symlink', target: linkTarget });
        if (reason) throw refuse(archive, name, reaching(reason));
        links.push({ path: target, target: linkTarget });
      } else {
        // 'wx': never through something already there (a link, a second entry of the same name)
        await pipeline(stream, createWriteStream(target, { flags: 'wx' }));
      }
    }
  } catch (error) {
    if (error instanceof RefusedEntry) throw error;
    // yauzl checks every name itself before handing the entry out
    const named = /^(absolute path|invalid relative path|invalid characters in fileName): (.*)$/.exec((error as Error).message);
    if (named) throw refuse(archive, named[2]!, reaching(named[1] === 'absolute path' ? 'an absolute path' : named[1] === 'invalid relative path' ? "a path with '..'" : 'a path with backslashes'));
    throw new Error(`${basename(archive)} is damaged or unreadable (${(error as Error).message}); delete it and fetch again`);
  } finally {
    zip.close();
  }
  for (const link of links) await symlink(link.target, link.path);
}

/**
 * The last line of defence, after the per-entry checks: every symlink in `dest` must resolve inside
 * it. Links can chain (a link beside another link's target), which no single entry's check sees.
 */
async function assertLinksInside(archive: string, dest: string): Promise<void> {
  const root = await realpath(dest);
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      if (!entry.isSymbolicLink()) continue;
      const resolved = await realpath(path).catch(() => null);
      // a dangling link is refused too: something outside could complete it later
      if (resolved === null || (resolved !== root && !resolved.startsWith(root + sep))) throw refuse(archive, relative(dest, path), reaching('a symlink that resolves outside'));
    }
  };
  await walk(dest);
}

/**
 * Unpacks a `.tar`, `.tar.gz` or `.zip` into `dest` (an empty folder the caller owns and removes on
 * failure). An entry that would reach outside `dest` (absolute, `..`, a link pointing out) fails
 * the whole archive with one line naming it.
 */
export async function unpackArchive(archive: string, dest: string): Promise<void> {
  const kind = archiveKind(archive);
  if (!kind) throw new Error(`cannot unpack ${basename(archive)}: not a .tar, .tar.gz or .zip`);
  await mkdir(dest, { recursive: true });
  await (kind === 'tar' ? untar(archive, dest) : unzip(archive, dest));
  await assertLinksInside(archive, dest);
}
