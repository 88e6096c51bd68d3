import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { datasetPath, datasetsDir, fetchDataset } from '../datasets/fetch.js';
import { DATASETS, findDataset, type KnownDataset } from '../datasets/registry.js';
import { formatBytes } from '../models/download.js';
import { exists } from '../models/weights.js';

const USAGE = `usage: npm run data -- list | fetch <name> | path <name>   [--quiet]
  list          the datasets rxcnn knows by name, and whether each is here
  fetch <name>  download (resuming a partial download), verify and unpack <name> into $RXCNN_CACHE/datasets/<name>
  path <name>   print the folder <name> unpacks to (what --data <name> uses)
A name works wherever a dataset folder does (--data caltech256); an existing folder of that name wins.`;

function dataset(name: string | undefined): KnownDataset {
  const found = name === undefined ? undefined : findDataset(name);
  if (!found) throw new Error(`${name === undefined ? 'name a dataset' : `unknown dataset '${name}'`}; known: ${DATASETS.map((d) => d.name).join(', ')}`);
  return found;
}

async function state(d: KnownDataset): Promise<string> {
  if (await exists(datasetPath(d))) return `unpacked in ${datasetPath(d)}`;
  if (await exists(`${datasetsDir()}/${d.archive.file}`)) return `archive in ${datasetsDir()}/ (unpacked on first use)`;
  return `not here (fetched on first use, ${formatBytes(d.archiveBytes)})`;
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (error) {
    const flag = /'([^']+)'/.exec((error as Error).message)?.[1] ?? String(error);
    throw new Error(`unknown or malformed flag ${flag}; valid flags: --quiet, --help`);
  }
  const [command, name, ...rest] = parsed.positionals;
  if (parsed.values.help || command === undefined) {
    console.log(USAGE);
    return command === undefined && !parsed.values.help ? 1 : 0;
  }
  if (rest.length > 0) throw new Error(`unexpected ${rest.join(' ')}; ${USAGE.split('\n')[0]}`);
  const say = (line: string) => parsed.values.quiet || console.error(line);
  switch (command) {
    case 'list':
      if (name !== undefined) throw new Error(`list takes no name`);
      for (const d of DATASETS) console.log(`${d.name.padEnd(11)} ${d.title}: ${d.classes}\n${''.padEnd(12)}${await state(d)}\n${''.padEnd(12)}${d.url} (${d.archive.sha256 ? `SHA-256 ${d.archive.sha256}` : `MD5 ${d.archive.md5}`})`);
      return 0;
    case 'fetch':
      console.log(await fetchDataset(dataset(name), { progress: !parsed.values.quiet, say }));
      return 0;
    case 'path': {
      const d = dataset(name);
      if (!(await exists(datasetPath(d)))) say(`(not fetched yet: npm run data -- fetch ${d.name}, or any run with --data ${d.name})`);
      console.log(datasetPath(d));
      return 0;
    }
    default:
      throw new Error(`unknown command '${command}'; valid: list, fetch, path`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (error: unknown) => {
      // the same one line as the other commands' failures, without loading the experiment code
      console.error(`rxcnn: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
      process.exitCode = 1;
    },
  );
}
