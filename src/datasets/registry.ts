/** An archive and how to check it; `inner` is an archive inside it that holds the images. */
export interface ArchiveSpec {
  /** The file name (outer archive) or the path inside the enclosing archive (inner one). */
  file: string;
  sha256?: string;
  md5?: string;
  inner?: ArchiveSpec;
}

/** A dataset rxcnn can fetch by name (`--data caltech256`). */
export interface KnownDataset {
  name: string;
  title: string;
  url: string;
  archive: ArchiveSpec;
  /** The folder of class folders the (innermost) archive unpacks to; `$RXCNN_CACHE/datasets/<name>/` holds just it. */
  root: string;
  /** Approximate sizes for the free-space check: the download, and everything unpacking writes beside it. */
  archiveBytes: number;
  unpackedBytes: number;
  /** Classes, and what the default `--exclude` leaves out. */
  classes: string;
  /** Where the URL and hashes come from. */
  source: string;
}

export const DATASETS: readonly KnownDataset[] = [
  {
    name: 'caltech101',
    title: 'Caltech-101',
    url: 'https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip',
    archive: { file: 'caltech-101.zip', md5: '3138e1922a9193bfa496528edbbc45d0', inner: { file: 'caltech-101/101_ObjectCategories.tar.gz', md5: 'b224c7392d521a49829488ab0f1120d9' } },
    root: '101_ObjectCategories',
    archiveBytes: 137.5e6,
    // the zip's contents (the images' tar.gz, Annotations.tar) plus the unpacked images
    unpackedBytes: 300e6,
    classes: '101 object classes, plus BACKGROUND_Google (not an object class), which the default --exclude leaves out',
    source:
      'CaltechDATA record mzrjq-6wc02 (doi:10.22002/D1.20086). Zip URL and MD5, and the zip holding caltech-101/101_ObjectCategories.tar.gz: torch for R, mlverse/torchvision R/dataset-caltech.R (caltech101_dataset); torchvision\'s current caltech.py reportedly uses the same (the copy read for this predates the move to CaltechDATA). Inner tar.gz MD5: torchvision torchvision/datasets/caltech.py (Caltech101, from when it downloaded the tarball itself).',
  },
  {
    name: 'caltech256',
    title: 'Caltech-256',
    url: 'https://data.caltech.edu/records/nyy15-4j048/files/256_ObjectCategories.tar',
    archive: { file: '256_ObjectCategories.tar', md5: '67b4f42ca05d46448c6bb8ecd2220f6d' },
    root: '256_ObjectCategories',
    archiveBytes: 1.19e9,
    unpackedBytes: 1.2e9,
    classes: '256 object classes, plus 257.clutter (not an object class), which the default --exclude leaves out',
    source:
      'CaltechDATA record nyy15-4j048. URL and MD5: torch for R, mlverse/torchvision R/dataset-caltech.R (caltech256_dataset); the same MD5 in torchvision torchvision/datasets/caltech.py (Caltech256).',
  },
];

export function findDataset(name: string, datasets: readonly KnownDataset[] = DATASETS): KnownDataset | undefined {
  return datasets.find((d) => d.name === name);
}
