import { mkdir, readdir, rename, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { alive, checkFile, downloadFile, formatBytes } from '../models/download.js';
import { cacheDir, exists } from '../models/weights.js';
import { DATASETS, findDataset, type ArchiveSpec, type KnownDataset } from './registry.js';
import { unpackArchive } from './unpack.js';

/** Where named datasets (and their archives) live: `$RXCNN_CACHE/datasets`. */
export const datasetsDir = () => join(cacheDir(), 'datasets');

/** The folder a named dataset unpacks to; it holds just the dataset's root folder (`256_ObjectCategories`). */
export const datasetPath = (dataset: KnownDataset) => join(datasetsDir(), dataset.name);

export interface FetchOptions {
  /** Download progress bar on stderr (when it is a terminal). */
  progress?: boolean;
  /** Lines about what is happening (downloading, verifying, unpacking). */
  say?: (line: string) => void;
}

async function assertFreeSpace(dataset: KnownDataset, archivePresent: boolean): Promise<void> {
  const dir = datasetsDir();
  const partial = (await stat(join(dir, `${dataset.archive.file}.part`)).catch(() => null))?.size ?? 0;
  const download = archivePresent ? 0 : Math.max(0, dataset.archiveBytes - partial);
  const needed = download + dataset.unpackedBytes;
  const { bavail, bsize } = await statfs(dir);
  const free = Number(bavail) * Number(bsize);
  if (free < needed) {
    throw new Error(`not enough free disk space in ${dir} for ${dataset.name}: it needs ${formatBytes(needed)} (archive ${formatBytes(download)} + unpacked ${formatBytes(dataset.unpackedBytes)}), ${formatBytes(free)} is free; set RXCNN_CACHE to a bigger disk`);
  }
}

async function verify(path: string, archive: ArchiveSpec, placed: string): Promise<void> {
  const check = await checkFile(path, archive);
  if (check && check.got !== check.expected) {
    throw new Error(`${placed}: ${check.algorithm} is ${check.got}, expected ${check.expected} (not the published file); delete or replace it`);
  }
}

/** Unpacking folders left by a process that was killed mid-way (the name carries its pid). */
async function removeAbandoned(dir: string, name: string): Promise<void> {
  for (const entry of await readdir(dir)) {
    const pid = new RegExp(`^\\.${name}\\.(\\d+)\\.unpacking$`).exec(entry)?.[1];
    if (pid && !alive(Number(pid))) await rm(join(dir, entry), { recursive: true, force: true });
  }
}

/**
 * Makes `$RXCNN_CACHE/datasets/<name>/` hold the dataset, unless it already does (then nothing is
 * read or downloaded). The archive is taken from `$RXCNN_CACHE/datasets/` when it is there (a file
 * downloaded by hand), else downloaded there (resumably, with a progress bar); either way its hash
 * is checked before anything is unpacked. Archives inside it are checked and unpacked in turn. All
 * unpacking happens in a temporary folder beside the target, renamed into place only when complete.
 */
export async function fetchDataset(dataset: KnownDataset, options: FetchOptions = {}): Promise<string> {
  const target = datasetPath(dataset);
  if (await exists(target)) return target;
  const dir = datasetsDir();
  await mkdir(dir, { recursive: true });
  const placed = join(dir, dataset.archive.file);
  const archivePresent = await exists(placed);
  await assertFreeSpace(dataset, archivePresent);
  const instead = `download it by hand and put ${dataset.archive.file} into ${dir}/ (it is verified and unpacked from there)`;
  if (!archivePresent) options.say?.(`downloading ${dataset.title} (${formatBytes(dataset.archiveBytes)}) from ${dataset.url}`);
  const { path: archive, downloaded } = await downloadFile({ file: dataset.archive.file, url: dataset.url, md5: dataset.archive.md5, sha256: dataset.archive.sha256 }, { dir, progress: options.progress, say: options.say, instead });
  if (!downloaded) {
    options.say?.(`verifying ${archive}`);
    await verify(archive, dataset.archive, archive);
  }
  await removeAbandoned(dir, dataset.name);
  const work = join(dir, `.${dataset.name}.${process.pid}.unpacking`);
  try {
    let spec: ArchiveSpec = dataset.archive;
    let level = 0;
    let into = join(work, String(level));
    options.say?.(`unpacking ${spec.file}`);
    await unpackArchive(archive, into);
    while (spec.inner) {
      const inner = join(into, spec.inner.file);
      if (!(await exists(inner))) throw new Error(`${spec.file} does not contain ${spec.inner.file}; delete ${archive} and fetch again`);
      await verify(inner, spec.inner, `${spec.inner.file} inside ${spec.file}`);
      spec = spec.inner;
      into = join(work, String(++level));
      options.say?.(`unpacking ${spec.file}`);
      await unpackArchive(inner, into);
    }
    const unpacked = join(into, dataset.root);
    if (!(await stat(unpacked).catch(() => null))?.isDirectory()) throw new Error(`${spec.file} did not unpack to a ${dataset.root} folder; delete ${archive} and fetch again`);
    const complete = join(work, 'complete');
    await mkdir(complete);
    await rename(unpacked, join(complete, dataset.root));
    try {
      await rename(complete, target);
    } catch (error) {
      // another process finished the same dataset first: its copy is as good as this one
      if (!['ENOTEMPTY', 'EEXIST'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  options.say?.(`${dataset.title} is in ${target}`);
  return target;
}

export interface ResolveOptions extends FetchOptions {
  /** The registry names are looked up in (the known datasets). */
  datasets?: readonly KnownDataset[];
}

/**
 * A `--data`/`--test-data` value as a folder: an existing path as it is (a folder named like a
 * dataset wins over the name), else a dataset name, fetched when missing.
 */
export async function resolveDataset(nameOrPath: string, options: ResolveOptions = {}): Promise<string> {
  if (await exists(nameOrPath)) return nameOrPath;
  const dataset = findDataset(nameOrPath, options.datasets);
  if (dataset) return fetchDataset(dataset, options);
  if (/^[\w.-]+$/.test(nameOrPath)) throw new Error(`dataset folder not found: ${nameOrPath} (nor a dataset name: ${(options.datasets ?? DATASETS).map((d) => d.name).join(', ')})`);
  return nameOrPath;
}

/** The experiment options with `data` and `testData` resolved by {@link resolveDataset}. */
export async function resolveDataOptions<T extends { data: string; testData?: string }>(options: T, fetch: ResolveOptions = {}): Promise<T> {
  const data = await resolveDataset(options.data, fetch);
  const testData = options.testData === undefined ? undefined : await resolveDataset(options.testData, fetch);
  return { ...options, data, ...(testData === undefined ? {} : { testData }) };
}
