import { chmod, cp, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { sniffImageFormat } from '../src/decode/header.js';
import { discover, displayName } from '../src/operators/discover.js';
import { FIXTURE_ROOT, fixtureImages, temporaryDir } from './helpers.js';

/** A small tree in the Caltech-256 layout, with the real archive's quirks, built from fixture photos. */
async function caltech256Tree(): Promise<string> {
  const root = join(await temporaryDir(), '256_ObjectCategories');
  const photos = await fixtureImages('accordion');
  const put = async (rel: string, from = photos[0]!) => {
    await mkdir(join(root, rel, '..'), { recursive: true });
    await cp(from, join(root, rel));
  };
  await put('001.ak47/001_0001.jpg', photos[0]);
  await put('001.ak47/001_0002.jpg', photos[1]);
  await put('056.dog/056_0001.jpg', photos[2]);
  await put('056.dog/greg/vision309/056_0099.jpg', photos[3]);
  await mkdir(join(root, '056.dog/greg/empty'), { recursive: true });
  await put('198.spider/198_0001.jpg', photos[4]);
  await writeFile(join(root, '198.spider/RENAME2'), 'rename this file\n');
  await writeFile(join(root, '198.spider/Thumbs.db'), Buffer.alloc(64, 7));
  await put('257.clutter/257_0001.jpg', photos[5]);
  return root;
}

describe('discover', () => {
  it('reads the Caltech-101 layout: class = folder, sorted, every image labelled', async () => {
    const dataset = await firstValueFrom(discover(FIXTURE_ROOT));
    const ids = dataset.classes.map((c) => c.id);
    expect(ids).toEqual([...ids].sort());
    expect(ids).toContain('Faces_easy');
    expect(dataset.classes.map((c) => c.index)).toEqual(ids.map((_, i) => i));
    expect(dataset.samples.length).toBe(345);
    expect(dataset.skipped).toEqual([]);
    for (const sample of dataset.samples) {
      expect(sample.path.split('/').at(-2)).toBe(ids[sample.label]);
    }
  });

  it('reads the Caltech-256 layout, skips non-images with a reason and keeps nested images in their class', async () => {
    const root = await caltech256Tree();
    const dataset = await firstValueFrom(discover(root, { exclude: ['257.clutter'] }));
    expect(dataset.classes.map((c) => [c.id, c.name])).toEqual([
      ['001.ak47', 'ak47'],
      ['056.dog', 'dog'],
      ['198.spider', 'spider'],
    ]);
    const dog = dataset.samples.filter((s) => s.label === 1).map((s) => s.path.slice(root.length + 1));
    expect(dog).toEqual(['056.dog/056_0001.jpg', '056.dog/greg/vision309/056_0099.jpg']);
    expect(dataset.skipped.map((s) => [s.path.slice(root.length + 1), s.reason]).sort()).toEqual([
      ['198.spider/RENAME2', 'not an image (extension)'],
      ['198.spider/Thumbs.db', 'not an image (extension)'],
    ]);
  });

  it('accepts the folder that holds the unpacked archive', async () => {
    const root = await caltech256Tree();
    await writeFile(join(root, '..', 'README.txt'), 'Caltech-256');
    const dataset = await firstValueFrom(discover(join(root, '..'), { exclude: ['clutter'] }));
    expect(dataset.root).toBe(root);
    expect(dataset.classes).toHaveLength(3);
  });

  it('checks content, not only the extension, and skips extensionless files', async () => {
    const root = await temporaryDir();
    const [photo] = await fixtureImages('watch');
    await mkdir(join(root, 'watch'));
    await mkdir(join(root, 'BACKGROUND_Google'));
    await cp(photo!, join(root, 'watch/real.jpg'));
    await writeFile(join(root, 'watch/fake.jpg'), 'this is text, not a JPEG');
    await cp(photo!, join(root, 'watch/tmp'));
    await writeFile(join(root, 'watch/.DS_Store'), Buffer.alloc(16));
    await cp(photo!, join(root, 'BACKGROUND_Google/x.jpg'));
    await writeFile(join(root, 'stray.jpg'), 'loose file');
    const dataset = await firstValueFrom(discover(root, { exclude: ['BACKGROUND_Google'] }));
    expect(dataset.samples.map((s) => s.path)).toEqual([join(root, 'watch/real.jpg')]);
    const reasons = Object.fromEntries(dataset.skipped.map((s) => [s.path.slice(root.length + 1), s.reason]));
    expect(reasons).toEqual({
      'watch/fake.jpg': 'not an image (content)',
      'watch/tmp': 'not an image (extension)',
      'watch/.DS_Store': 'hidden file',
      'stray.jpg': 'not inside a class folder',
    });
  });

  it('counts an unreadable image as skipped', async () => {
    if (process.getuid?.() === 0) {
      // root reads mode-000 files; a dangling symlink is unreadable for everyone
      const root = await temporaryDir();
      await mkdir(join(root, 'a'));
      await symlink(join(root, 'missing.jpg'), join(root, 'a/gone.jpg'));
      const [photo] = await fixtureImages('watch');
      await cp(photo!, join(root, 'a/ok.jpg'));
      const dataset = await firstValueFrom(discover(root));
      expect(dataset.skipped).toEqual([{ path: join(root, 'a/gone.jpg'), reason: 'unreadable (ENOENT)' }]);
      return;
    }
    const root = await temporaryDir();
    await mkdir(join(root, 'a'));
    const [photo] = await fixtureImages('watch');
    await cp(photo!, join(root, 'a/locked.jpg'));
    await cp(photo!, join(root, 'a/ok.jpg'));
    await chmod(join(root, 'a/locked.jpg'), 0o000);
    const dataset = await firstValueFrom(discover(root));
    expect(dataset.skipped).toEqual([{ path: join(root, 'a/locked.jpg'), reason: 'unreadable (EACCES)' }]);
  });

  it('ends a symlink loop with one counted skip, and counts a file repeated through a symlink once', async () => {
    const root = await temporaryDir();
    const [photo] = await fixtureImages('watch');
    await mkdir(join(root, 'watch'));
    await cp(photo!, join(root, 'watch/a.jpg'));
    await symlink('..', join(root, 'watch/loop'));
    await symlink('a.jpg', join(root, 'watch/b.jpg'));
    const dataset = await firstValueFrom(discover(root));
    expect(dataset.samples.map((s) => s.path)).toEqual([join(root, 'watch/a.jpg')]);
    expect(dataset.skipped).toEqual([
      { path: join(root, 'watch/loop'), reason: `symlink loop (leads back to ${root})` },
      { path: join(root, 'watch/b.jpg'), reason: `same file as ${join(root, 'watch/a.jpg')} (symlink)` },
    ]);
  });

  it('fails with one line when the root is missing, a file, or holds no images', async () => {
    const dir = await temporaryDir();
    await expect(firstValueFrom(discover(join(dir, 'nope')))).rejects.toThrow(/^dataset folder not found: /);
    await writeFile(join(dir, 'file.txt'), 'x');
    await expect(firstValueFrom(discover(join(dir, 'file.txt')))).rejects.toThrow(/^dataset path is not a folder: /);
    await mkdir(join(dir, 'empty/cls'), { recursive: true });
    await expect(firstValueFrom(discover(join(dir, 'empty')))).rejects.toThrow(/^no images found/);
  });

  it('names display names and image formats', () => {
    expect(displayName('001.ak47')).toBe('ak47');
    expect(displayName('accordion')).toBe('accordion');
    expect(sniffImageFormat(Uint8Array.from([0xff, 0xd8, 0xff, 0xe0]))).toBe('jpeg');
    expect(sniffImageFormat(Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a]))).toBe('png');
    expect(sniffImageFormat(new TextEncoder().encode('RIFF0000WEBP'))).toBe('webp');
    expect(sniffImageFormat(new TextEncoder().encode('hello world!'))).toBeNull();
  });
});
