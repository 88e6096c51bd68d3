import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { firstValueFrom } from 'rxjs';
import * as tar from 'tar';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { datasetsDir, fetchDataset, resolveDataOptions, resolveDataset } from '../src/datasets/fetch.js';
import type { KnownDataset } from '../src/datasets/registry.js';
import { BASE_OPTIONS } from '../src/graphs/index.js';
import { downloadFile } from '../src/models/download.js';
import { discover } from '../src/operators/discover.js';
import type { Report } from '../src/report.js';
import { fixtureImages, graph } from './helpers.js';

// ---- archives built at test time -------------------------------------------------------------

const md5 = (bytes: Buffer) => createHash('md5').update(bytes).digest('hex');

type TarEntry = { path: string; data?: Buffer; type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link'; linkpath?: string };

/** A tar written header by header, so it can hold entries `tar.c` would never write (`../evil`). */
function makeTar(entries: TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    const type = e.type ?? 'File';
    const header = Buffer.alloc(512);
    new tar.Header({ path: e.path, mode: type === 'Directory' ? 0o755 : 0o644, size: type === 'File' ? data.length : 0, type, linkpath: e.linkpath, mtime: new Date(0), uid: 0, gid: 0 }).encode(header, 0);
    blocks.push(header);
    if (type === 'File') blocks.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  return Buffer.concat([...blocks, Buffer.alloc(1024)]);
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
const crc32 = (bytes: Buffer) => {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
};

/** A zip of stored entries (Unix modes in the external attributes, so a symlink is a symlink). */
function makeZip(entries: { name: string; data?: Buffer; symlink?: boolean }[]): Buffer {
  const local: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const data = e.data ?? Buffer.alloc(0);
    const crc = crc32(data);
    const head = Buffer.alloc(30);
    head.writeUInt32LE(0x04034b50, 0);
    head.writeUInt16LE(20, 4);
    head.writeUInt16LE(0x0800, 6);
    head.writeUInt32LE(crc, 14);
    head.writeUInt32LE(data.length, 18);
    head.writeUInt32LE(data.length, 22);
    head.writeUInt16LE(name.length, 26);
    local.push(head, name, data);
    const dir = Buffer.alloc(46);
    dir.writeUInt32LE(0x02014b50, 0);
    dir.writeUInt16LE((3 << 8) | 20, 4);
    dir.writeUInt16LE(20, 6);
    dir.writeUInt16LE(0x0800, 8);
    dir.writeUInt32LE(crc, 16);
    dir.writeUInt32LE(data.length, 20);
    dir.writeUInt32LE(data.length, 24);
    dir.writeUInt16LE(name.length, 28);
    const mode = e.symlink ? 0o120777 : e.name.endsWith('/') ? 0o40755 : 0o100644;
    dir.writeUInt32LE((mode << 16) >>> 0, 38);
    dir.writeUInt32LE(offset, 42);
    central.push(dir, name);
    offset += head.length + name.length + data.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...local, cd, end]);
}

// ---- a local server that honours Range, and can drop a connection halfway ---------------------

let server: Server;
let base: string;
const files = new Map<string, Buffer>();
/**
 * Paths whose next response stops halfway: the connection closes once the client has written the
 * first half to this partial file (closing earlier could lose bytes still queued in the client's
 * stream, and then nothing would be left to resume).
 */
const dropNext = new Map<string, string>();
/** Paths served whole (200) whatever Range says, as some servers do. */
const ignoreRange = new Set<string>();
const requests: { path: string; headers: IncomingHttpHeaders }[] = [];

function serve(path: string, body: Buffer): string {
  files.set(path, body);
  return `${base}${path}`;
}

let scratch: string;
let sources: { c256: Buffer; c101: Buffer; images: Buffer[] };
const CLASSES_256 = ['001.ak47', '002.american-flag', '003.backpack', '257.clutter'];

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = req.url ?? '/';
    requests.push({ path, headers: req.headers });
    const body = files.get(path);
    if (!body) return void res.writeHead(404).end();
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const from = range && !ignoreRange.has(path) ? Number(range[1]) : null;
    if (from !== null && from >= body.length) return void res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
    const part = from === null ? body : body.subarray(from);
    res.writeHead(from === null ? 200 : 206, { 'content-length': part.length, 'accept-ranges': 'bytes', ...(from === null ? {} : { 'content-range': `bytes ${from}-${body.length - 1}/${body.length}` }) });
    const partial = dropNext.get(path);
    if (partial) {
      dropNext.delete(path);
      const half = part.length >> 1;
      res.write(part.subarray(0, half));
      void (async () => {
        while (((await stat(partial).catch(() => null))?.size ?? 0) < half) await new Promise((resolve) => setTimeout(resolve, 5));
        res.socket?.end();
      })();
      return;
    }
    res.end(part);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  scratch = await mkdtemp(join(tmpdir(), 'rxcnn-datasets-'));
  const photos = [...(await fixtureImages('Faces_easy')).slice(0, 4), ...(await fixtureImages('Leopards')).slice(0, 4), ...(await fixtureImages('airplanes')).slice(0, 4), ...(await fixtureImages('watch')).slice(0, 2)];
  const images = await Promise.all(photos.map((p) => readFile(p)));
  // Caltech-256's layout: 256_ObjectCategories/001.ak47/001_0001.jpg, and the 257.clutter class
  const tree = join(scratch, 'c256');
  for (const [c, cls] of CLASSES_256.entries()) {
    const n = cls === '257.clutter' ? 2 : 4;
    await mkdir(join(tree, '256_ObjectCategories', cls), { recursive: true });
    for (let i = 0; i < n; i++) await writeFile(join(tree, '256_ObjectCategories', cls, `${cls.slice(0, 3)}_${String(i + 1).padStart(4, '0')}.jpg`), images[c * 4 + i]!);
  }
  await tar.c({ file: join(scratch, '256_ObjectCategories.tar'), cwd: tree, portable: true }, ['256_ObjectCategories']);
  // Caltech-101's: caltech-101.zip ⊃ caltech-101/101_ObjectCategories.tar.gz ⊃ 101_ObjectCategories/<class>/image_0001.jpg
  const inner = gzipSync(
    makeTar([
      { path: '101_ObjectCategories/', type: 'Directory' },
      ...['accordion', 'BACKGROUND_Google'].flatMap((cls, c) => [0, 1].map((i) => ({ path: `101_ObjectCategories/${cls}/image_000${i + 1}.jpg`, data: images[c * 2 + i]! }))),
    ]),
  );
  const c101 = makeZip([{ name: 'caltech-101/' }, { name: 'caltech-101/101_ObjectCategories.tar.gz', data: inner }, { name: 'caltech-101/Annotations.tar', data: makeTar([{ path: 'Annotations/x.mat', data: Buffer.from('mat') }]) }, { name: 'caltech-101/show_annotation.m', data: Buffer.from('%') }]);
  sources = { c256: await readFile(join(scratch, '256_ObjectCategories.tar')), c101, images };
  files.set('/inner-md5', Buffer.from(md5(inner)));
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(scratch, { recursive: true, force: true });
});

/** Every test fetches into a fresh cache. */
let cache: string;
beforeEach(async () => {
  cache = await mkdtemp(join(scratch, 'cache-'));
  process.env['RXCNN_CACHE'] = cache;
});

const caltech256 = (overrides: Partial<KnownDataset> = {}): KnownDataset => ({
  name: 'caltech256',
  title: 'Caltech-256 (test)',
  url: serve('/256_ObjectCategories.tar', sources.c256),
  archive: { file: '256_ObjectCategories.tar', md5: md5(sources.c256) },
  root: '256_ObjectCategories',
  archiveBytes: sources.c256.length,
  unpackedBytes: sources.c256.length,
  classes: '3 + 257.clutter',
  source: 'built by the test',
  ...overrides,
});

const caltech101 = (innerMd5: string): KnownDataset => ({
  name: 'caltech101',
  title: 'Caltech-101 (test)',
  url: serve('/caltech-101.zip', sources.c101),
  archive: { file: 'caltech-101.zip', md5: md5(sources.c101), inner: { file: 'caltech-101/101_ObjectCategories.tar.gz', md5: innerMd5 } },
  root: '101_ObjectCategories',
  archiveBytes: sources.c101.length,
  unpackedBytes: 2 * sources.c101.length,
  classes: '1 + BACKGROUND_Google',
  source: 'built by the test',
});

/** Every path under `dir`, relative, sorted (what a fetch left behind). */
const listing = async (dir: string) => ((await readdir(dir, { recursive: true }).catch(() => [])) as string[]).sort();

/** A dataset whose archive holds `entries` (hash computed, so only the entries can be wrong). */
function crafted(name: string, archive: Buffer, file: string): KnownDataset {
  return { ...caltech256(), name, url: serve(`/${name}/${file}`, archive), archive: { file, md5: md5(archive) }, archiveBytes: archive.length };
}

describe('datasets by name', () => {
  it('fetches, verifies and unpacks a Caltech-256-shaped tar into $RXCNN_CACHE/datasets/<name>; a second fetch is a no-op', async () => {
    const said: string[] = [];
    const path = await fetchDataset(caltech256(), { say: (line) => said.push(line) });
    expect(path).toBe(join(cache, 'datasets', 'caltech256'));
    expect(await readdir(path)).toEqual(['256_ObjectCategories']);
    expect(await readdir(join(path, '256_ObjectCategories'))).toEqual(CLASSES_256);
    expect(await readFile(join(path, '256_ObjectCategories', '001.ak47', '001_0001.jpg'))).toEqual(sources.images[0]);
    // the archive stays beside it; no partial file, lock or unpacking folder is left
    expect(await readdir(datasetsDir())).toEqual(['256_ObjectCategories.tar', 'caltech256']);
    expect(said.some((l) => l.startsWith('unpacking 256_ObjectCategories.tar'))).toBe(true);

    const before = requests.length;
    const stamp = (await stat(path)).mtimeMs;
    expect(await resolveDataset('caltech256', { datasets: [caltech256()] })).toBe(path);
    expect(requests.length).toBe(before);
    expect((await stat(path)).mtimeMs).toBe(stamp);

    // the loader reads it as the study did: 257.clutter is left out by the default --exclude
    const dataset = await firstValueFrom(discover(path, { exclude: BASE_OPTIONS.exclude }));
    expect(dataset.root).toBe(join(path, '256_ObjectCategories'));
    expect(dataset.classes.map((c) => c.id)).toEqual(['001.ak47', '002.american-flag', '003.backpack']);
  });

  it('unpacks a Caltech-101-shaped zip ⊃ tar.gz fully, checking the inner archive too', async () => {
    const innerMd5 = (files.get('/inner-md5') as Buffer).toString();
    const path = await fetchDataset(caltech101(innerMd5));
    expect(path).toBe(join(cache, 'datasets', 'caltech101'));
    expect(await listing(path)).toEqual(['101_ObjectCategories', '101_ObjectCategories/BACKGROUND_Google', '101_ObjectCategories/BACKGROUND_Google/image_0001.jpg', '101_ObjectCategories/BACKGROUND_Google/image_0002.jpg', '101_ObjectCategories/accordion', '101_ObjectCategories/accordion/image_0001.jpg', '101_ObjectCategories/accordion/image_0002.jpg']);
    expect(await readFile(join(path, '101_ObjectCategories', 'accordion', 'image_0002.jpg'))).toEqual(sources.images[1]);
    const dataset = await firstValueFrom(discover(path, { exclude: BASE_OPTIONS.exclude }));
    expect(dataset.classes.map((c) => c.id)).toEqual(['accordion']);
    expect(await readdir(datasetsDir())).toEqual(['caltech-101.zip', 'caltech101']);

    // an inner archive that is not the published one stops everything, and leaves no folder
    process.env['RXCNN_CACHE'] = await mkdtemp(join(scratch, 'cache-'));
    await expect(fetchDataset(caltech101('0'.repeat(32)))).rejects.toThrow(/^caltech-101\/101_ObjectCategories\.tar\.gz inside caltech-101\.zip: MD5 is [0-9a-f]{32}, expected 0{32} \(not the published file\); delete or replace it$/);
    expect(await readdir(datasetsDir())).toEqual(['caltech-101.zip']);
  });

  it('an interrupted download keeps its partial file and resumes with Range, ending with the same bytes', async () => {
    const dir = join(cache, 'downloads');
    const url = serve('/resume/256_ObjectCategories.tar', sources.c256);
    const source = { file: '256_ObjectCategories.tar', url, md5: md5(sources.c256) };
    dropNext.set('/resume/256_ObjectCategories.tar', join(dir, '256_ObjectCategories.tar.part'));
    await expect(downloadFile(source, { dir, retries: 0 })).rejects.toThrow(/^download of http:\/\/127\.0\.0\.1:\d+\/resume\/256_ObjectCategories\.tar interrupted after [\d.]+ kB of [\d.]+ kB \(.+\); [\d.]+ kB kept in .+\.part: run again to resume, or put 256_ObjectCategories\.tar into /);
    const kept = (await stat(join(dir, '256_ObjectCategories.tar.part'))).size;
    expect(kept).toBe(sources.c256.length >> 1);
    expect(await readdir(dir)).toEqual(['256_ObjectCategories.tar.part']); // the lock is released

    const seen = requests.length;
    const { path, downloaded } = await downloadFile(source, { dir });
    expect(downloaded).toBe(true);
    expect(requests.slice(seen).map((r) => r.headers.range)).toEqual([`bytes=${kept}-`]);
    expect(await readFile(path)).toEqual(sources.c256);
    expect(await readdir(dir)).toEqual(['256_ObjectCategories.tar']);

    // within one fetch: the connection drops halfway, the fetch resumes by itself
    const said: string[] = [];
    const again = caltech256({ url: serve('/drop/256_ObjectCategories.tar', sources.c256) });
    const from = requests.length;
    process.env['RXCNN_CACHE'] = await mkdtemp(join(scratch, 'cache-'));
    dropNext.set('/drop/256_ObjectCategories.tar', join(datasetsDir(), '256_ObjectCategories.tar.part'));
    const unpacked = await fetchDataset(again, { say: (line) => said.push(line) });
    const ranges = requests.slice(from).map((r) => r.headers.range);
    expect(ranges).toHaveLength(2);
    expect(ranges[0]).toBeUndefined();
    expect(ranges[1]).toBe(`bytes=${sources.c256.length >> 1}-`);
    expect(said.some((l) => /the connection dropped after .*; resuming/.test(l))).toBe(true);
    expect(await readFile(join(datasetsDir(), '256_ObjectCategories.tar'))).toEqual(sources.c256);
    expect(await readdir(join(unpacked, '256_ObjectCategories'))).toEqual(CLASSES_256);
  });

  it('a server that ignores Range (200) replaces the partial file instead of appending to it', async () => {
    const dir = join(cache, 'downloads');
    const url = serve('/norange/256_ObjectCategories.tar', sources.c256);
    ignoreRange.add('/norange/256_ObjectCategories.tar');
    await mkdir(dir);
    await writeFile(join(dir, '256_ObjectCategories.tar.part'), sources.c256.subarray(0, 1000));
    const seen = requests.length;
    const { path } = await downloadFile({ file: '256_ObjectCategories.tar', url, md5: md5(sources.c256) }, { dir });
    expect(requests.slice(seen).map((r) => r.headers.range)).toEqual(['bytes=1000-']);
    expect(await readFile(path)).toEqual(sources.c256);
  });

  it('a download whose hash is wrong is deleted, and nothing is unpacked', async () => {
    const wrong = caltech256({ archive: { file: '256_ObjectCategories.tar', md5: 'f'.repeat(32) } });
    await expect(fetchDataset(wrong)).rejects.toThrow(/^http:\/\/127\.0\.0\.1:\d+\/256_ObjectCategories\.tar: MD5 is [0-9a-f]{32}, expected f{32}; the download was discarded$/);
    expect(await listing(datasetsDir())).toEqual([]);
    const sha = caltech256({ archive: { file: '256_ObjectCategories.tar', sha256: '0'.repeat(64) } });
    await expect(fetchDataset(sha)).rejects.toThrow(/SHA-256 is [0-9a-f]{64}, expected 0{64}; the download was discarded$/);
    expect(await listing(datasetsDir())).toEqual([]);
  });

  it('offline: one line naming the file, the URL and the folder; an archive put there by hand is verified and unpacked without a download', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const offline = caltech256({ url: `http://127.0.0.1:${port}/256_ObjectCategories.tar` });
    const error = await fetchDataset(offline).catch((e: Error) => e);
    expect((error as Error).message).toBe(`cannot download http://127.0.0.1:${port}/256_ObjectCategories.tar (ECONNREFUSED); download it by hand and put 256_ObjectCategories.tar into ${join(cache, 'datasets')}/ (it is verified and unpacked from there)`);
    expect(await listing(datasetsDir())).toEqual([]);

    // a wrong file put there is refused (and left alone: it is the user's)
    await writeFile(join(datasetsDir(), '256_ObjectCategories.tar'), sources.c256.subarray(0, 2048));
    await expect(fetchDataset(offline)).rejects.toThrow(/256_ObjectCategories\.tar: MD5 is [0-9a-f]{32}, expected [0-9a-f]{32} \(not the published file\); delete or replace it$/);
    expect(await readdir(datasetsDir())).toEqual(['256_ObjectCategories.tar']);
    // the right one is unpacked, with the server still unreachable
    await writeFile(join(datasetsDir(), '256_ObjectCategories.tar'), sources.c256);
    const path = await fetchDataset(offline);
    expect(await readdir(join(path, '256_ObjectCategories'))).toEqual(CLASSES_256);
  });

  it('checks free disk space up front (archive + unpacked size)', async () => {
    const huge = caltech256({ archiveBytes: 3e18, unpackedBytes: 4e18 });
    const seen = requests.length;
    await expect(fetchDataset(huge)).rejects.toThrow(/^not enough free disk space in .+\/datasets for caltech256: it needs 7000000\.0 TB \(archive 3000000\.0 TB \+ unpacked 4000000\.0 TB\), [\d.]+ [kMGT]?B is free; set RXCNN_CACHE to a bigger disk$/);
    expect(requests.length).toBe(seen);
  });

  it('a second downloader of the same file is kept out while the first is alive; a dead one’s lock is taken over', async () => {
    const dir = join(cache, 'downloads');
    await mkdir(dir);
    const source = { file: '256_ObjectCategories.tar', url: serve('/lock/256_ObjectCategories.tar', sources.c256), md5: md5(sources.c256) };
    await writeFile(join(dir, '256_ObjectCategories.tar.lock'), String(process.pid));
    await expect(downloadFile(source, { dir })).rejects.toThrow(`another process (pid ${process.pid}) is downloading 256_ObjectCategories.tar into ${dir}/; wait for it to finish`);
    await writeFile(join(dir, '256_ObjectCategories.tar.lock'), '99999999'); // above any pid_max: no such process
    expect(await readFile((await downloadFile(source, { dir })).path)).toEqual(sources.c256);
    expect(await readdir(dir)).toEqual(['256_ObjectCategories.tar']);
  });
});

describe('crafted archives cannot write outside the cache', () => {
  const outside = () => join(scratch, `outside-${basename(cache)}`);
  const jpg = () => sources.images[0]!;

  const cases: [string, () => { archive: Buffer; file: string }, RegExp][] = [
    ['tar: ../evil', () => ({ file: 'a.tar', archive: makeTar([{ path: '256_ObjectCategories/001.ak47/x.jpg', data: jpg() }, { path: '../evil', data: Buffer.from('evil') }]) }), /entry "\.\.\/evil" is a path with '\.\.'/],
    ['tar: absolute path', () => ({ file: 'a.tar', archive: makeTar([{ path: `${outside()}/abs`, data: Buffer.from('evil') }]) }), /entry "\/.*\/abs" is an absolute path/],
    ['tar: symlink out, then a file through it', () => ({ file: 'a.tar', archive: makeTar([{ path: '256_ObjectCategories/link', type: 'SymbolicLink', linkpath: outside() }, { path: '256_ObjectCategories/link/x.jpg', data: jpg() }]) }), /entry "256_ObjectCategories\/link" is a symlink to an absolute path/],
    ['tar: relative symlink climbing out', () => ({ file: 'a.tar', archive: makeTar([{ path: '256_ObjectCategories/up', type: 'SymbolicLink', linkpath: '../../../../..' }]) }), /entry "256_ObjectCategories\/up" is a symlink pointing outside \(\.\.\/\.\.\/\.\.\/\.\.\/\.\.\)/],
    ['tar: hard link to a file outside', () => ({ file: 'a.tar', archive: makeTar([{ path: '256_ObjectCategories/h', type: 'Link', linkpath: '../../../secret' }]) }), /entry "256_ObjectCategories\/h" is a path with '\.\.'|entry "256_ObjectCategories\/h" is a hard link pointing outside/],
    ['tar: links chained through a link', () => ({ file: 'a.tar', archive: makeTar([{ path: 'd/e', type: 'SymbolicLink', linkpath: '..' }, { path: 'd/e/l', type: 'SymbolicLink', linkpath: '../..' }]) }), /entry "d\/e\/l" was refused by tar \(.+\)/],
    ['tar: links that only escape when followed (b → ., a → b/..)', () => ({ file: 'a.tar', archive: makeTar([{ path: 'b', type: 'SymbolicLink', linkpath: '.' }, { path: 'a', type: 'SymbolicLink', linkpath: 'b/..' }]) }), /entry "a" is a symlink that resolves outside/],
    ['tar.gz: ../evil', () => ({ file: 'a.tar.gz', archive: gzipSync(makeTar([{ path: '256_ObjectCategories/../../evil', data: Buffer.from('evil') }])) }), /entry "256_ObjectCategories\/\.\.\/\.\.\/evil" is a path with '\.\.'/],
    ['zip: ../evil', () => ({ file: 'a.zip', archive: makeZip([{ name: '256_ObjectCategories/x.jpg', data: jpg() }, { name: '../evil', data: Buffer.from('evil') }]) }), /entry "\.\.\/evil" is a path with '\.\.'/],
    ['zip: absolute path', () => ({ file: 'a.zip', archive: makeZip([{ name: `${outside()}/abs`, data: Buffer.from('evil') }]) }), /entry "\/.*\/abs" is an absolute path/],
    ['zip: symlink out', () => ({ file: 'a.zip', archive: makeZip([{ name: '256_ObjectCategories/link', data: Buffer.from('../../../..'), symlink: true }, { name: '256_ObjectCategories/x.jpg', data: jpg() }]) }), /entry "256_ObjectCategories\/link" is a symlink pointing outside/],
    ['zip: links that only escape when followed (b → ., a → b/..)', () => ({ file: 'a.zip', archive: makeZip([{ name: 'b', data: Buffer.from('.'), symlink: true }, { name: 'a', data: Buffer.from('b/..'), symlink: true }]) }), /entry "a" is a symlink that resolves outside/],
  ];

  for (const [title, make, message] of cases) {
    it(title, async () => {
      const { archive, file } = make();
      const dataset = crafted(`crafted-${basename(cache)}`, archive, file);
      const error = (await fetchDataset(dataset).catch((e: Error) => e)) as Error;
      expect(error.message).toMatch(/^refusing a\.(tar|tar\.gz|zip): entry ".+" (is .+, which would reach outside the dataset folder|was refused by tar \(.+\)); nothing was unpacked$/);
      expect(error.message).toMatch(message);
      // nothing was written outside the cache, and nothing half-unpacked stays inside it
      expect(await listing(outside())).toEqual([]);
      expect((await readdir(scratch)).filter((f) => /evil|secret|abs/.test(f))).toEqual([]);
      expect(await listing(cache)).toEqual(['datasets', `datasets/${file}`]);
    });
  }
});

describe('--data <name> in the CLIs', () => {
  it('a folder of that name wins over the name; an unknown bare name says which names exist', async () => {
    const here = process.cwd();
    const dir = await mkdtemp(join(scratch, 'cwd-'));
    await mkdir(join(dir, 'caltech256'));
    process.chdir(dir);
    try {
      expect(await resolveDataset('caltech256', { datasets: [caltech256()] })).toBe('caltech256');
    } finally {
      process.chdir(here);
    }
    await expect(resolveDataset('caltech265', { datasets: [caltech256()] })).rejects.toThrow(/^dataset folder not found: caltech265 \(nor a dataset name: caltech256\)$/);
    expect(await resolveDataset(join(dir, 'nope'))).toBe(join(dir, 'nope')); // a path: the loader's own message follows
  });

  it('npm run graph -- mobilenetv2 --data caltech256 trains on the unpacked folder; npm run data -- path/list show it', async () => {
    // fetched from the local server here; the CLI (a child process with the same RXCNN_CACHE) then finds it by name
    const options = await resolveDataOptions({ data: 'caltech256', testData: undefined }, { datasets: [caltech256()] });
    expect(options).toEqual({ data: join(cache, 'datasets', 'caltech256'), testData: undefined });
    const path = await fetchDataset(caltech256());
    const out = join(cache, 'run');
    const result = await graph('mobilenetv2', '--data', 'caltech256', '--protocol', 'per-class:2', '--epochs', '1', '--image-size', '64', '--workers', '0', '--out', out);
    expect(result.stderr).not.toMatch(/rxcnn:/);
    expect(result.code).toBe(0);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as Report;
    expect(report.dataset.root).toBe(join(path, '256_ObjectCategories'));
    expect(report.dataset.classNames).toEqual(['ak47', 'american-flag', 'backpack']); // 257.clutter left out by default
    expect(report.dataset.train + report.dataset.test).toBe(12);

    const run = promisify(execFile);
    const root = fileURLToPath(new URL('..', import.meta.url));
    const data = (...args: string[]) => run(process.execPath, ['--import', 'tsx', 'src/cli/data.ts', ...args], { cwd: root, env: { ...process.env, CI: 'true' } });
    expect((await data('path', 'caltech256')).stdout).toBe(`${path}\n`);
    expect((await data('list')).stdout).toContain(`unpacked in ${path}`);
    const failed = await data('fetch', 'caltech999').catch((e: { code: number; stderr: string }) => e);
    expect(failed).toMatchObject({ code: 1, stderr: "rxcnn: unknown dataset 'caltech999'; known: caltech101, caltech256\n" });
  });
});
