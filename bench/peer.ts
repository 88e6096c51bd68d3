import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { from, lastValueFrom, toArray } from 'rxjs';
import { Bench } from 'tinybench';
import { completed } from './completed.js';
import { MACHINE_PEAK_GFLOPS, MACHINE_PEAK_TEXT } from './cpu.js';
import { openEngine, type EngineChoice } from '../src/engines/index.js';
import type { ImageBatch, Sample } from '../src/core/types.js';
import { disposeModel } from '../src/models/classifier.js';
import { createModel, disposeClassifier } from '../src/models/index.js';
import { asLayersModel } from '../src/models/persistence.js';
import { batch } from '../src/operators/batch.js';
import { BASE_OPTIONS } from '../src/graphs/graph.js';
import { decode } from '../src/operators/decode.js';
import { decodePixels } from '../src/decode/pixels.js';
import { predict } from '../src/operators/predict.js';
import { fixed, formatTable, times } from './table.js';
import { HEAP_FLAGS, MALLOC_TUNABLES, withMallocTunables, withoutTunables } from '../src/core/allocator.js';

const TORCH_PEER = fileURLToPath(new URL('./peer/torch_peer.py', import.meta.url));
const RXCNN_DECODE = fileURLToPath(new URL('./peer/rxcnn-decode.ts', import.meta.url));
export const HOW_TO_INSTALL_TORCH = 'apt-get install -y python3-torch python3-torchvision (Debian/Ubuntu; no extra BLAS package), or pip install torch torchvision';

export interface PeerOptions {
  samples: readonly Sample[];
  source: string;
  size: number;
  batch: number;
  /** DataLoader worker processes (the PyTorch default setup here: one per core). */
  workers: number;
  /** The machine's cores: torch.set_num_threads, and rxcnn's inference workers. */
  cores: number;
  widths: readonly number[];
  /** Alternating rounds of each side, for the decode CPU profile and the throughput race; medians reported. */
  rounds: number;
  modelBatches: number;
  profileImages: number;
  python?: string;
}

type Stage = 'decode' | 'decodeResize';
/** One image at a time on one thread, from bytes in memory: CPU seconds per image, median over rounds. */
export interface StageProfile {
  cpuSecondsPerImage: Record<Stage, number>;
  rounds: Array<Record<Stage, number>>;
}

interface TorchModelRun {
  width: number;
  threads: number;
  memoryFormat: 'nchw' | 'channels_last';
  imagesPerSecond: number;
  flopsPerImage: number;
  gflopsPerSecond: number;
  /** The operators one batch spent its CPU time in (profiled at the most threads). */
  kernels?: Array<{ op: string; share: number }>;
}
interface TorchModel {
  python: string;
  torch: string;
  torchvision: string;
  /** oneDNN (MKL-DNN), OpenMP, CPU capability, BLAS_INFO, from torch.__config__.show(). */
  buildConfig: string;
  /** The BLAS shared library torch loaded. */
  blas: string;
  runs: TorchModelRun[];
}

/**
 * An inference engine raced against torch, on the same uint8 batch. rxcnn's rows come from
 * {@link PEER_ENGINES}; the ONNX Runtime engine (issue 12) is one more entry there.
 */
export interface PeerEngine {
  name: string;
  /** Threads it computes on, for the table. */
  threads: (cores: number) => number;
  /** A MobileNetV2 of this width with random weights, ready to run batches. */
  load(width: number, size: number, cores: number): Promise<{ run(input: ImageBatch): Promise<unknown>; dispose(): Promise<void> }>;
}

/** A MobileNetV2 of this width with random weights (speed does not depend on them) behind rxcnn's engine seam. */
function engineEntry(name: string, engine: EngineChoice, workers: (cores: number) => number, threads: (cores: number) => number): PeerEngine {
  return {
    name,
    threads,
    async load(width, size, cores) {
      const model = await createModel('mobilenetv2', { classes: 1000, alpha: width, weights: 'none', inputSize: size });
      const whole = asLayersModel(model);
      try {
        const opened = await openEngine(whole, { preprocessing: model.preprocessing, workers: workers(cores), engine });
        return {
          run: (input) => lastValueFrom(from([input]).pipe(predict(model, opened))),
          dispose: async () => {
            await opened.dispose();
            disposeModel(whole);
            disposeClassifier(model);
          },
        };
      } catch (error) {
        disposeModel(whole);
        disposeClassifier(model);
        throw error;
      }
    },
  };
}

export const PEER_ENGINES: PeerEngine[] = [
  engineEntry('tfjs, main thread', 'tfjs', () => 0, () => 1),
  engineEntry('tfjs wasm, worker per core', 'tfjs', (cores) => cores, (cores) => cores),
  engineEntry('ONNX Runtime (rxcnn export)', 'onnxruntime', () => 0, (cores) => cores),
];

/** rxcnn's decoder in a child process, with glibc's malloc and V8's heap set as rxcnn's commands run it ({@link MALLOC_TUNABLES}, {@link HEAP_FLAGS}) or as they come (a user's own `node`). */
export interface RxcnnSetup {
  decoder: 'fast' | 'sharp';
  tuned: boolean;
}

export interface PeerReport {
  source: string;
  images: number;
  size: number;
  batch: number;
  cores: number;
  backend: string;
  pillow: string;
  profile: { images: number; pil: StageProfile; rxcnn: Array<RxcnnSetup & StageProfile> };
  /** Mean absolute difference (levels) of each decoder's resized pixels from PIL's bilinear ones. */
  pixels: { images: number; fastVsPil: number; sharpVsPil: number };
  throughput: {
    dataLoader: { workers: number; imagesPerSecond: number; passes: number[] };
    rxcnn: Array<RxcnnSetup & { concurrency: number; imagesPerSecond: number; passes: number[] }>;
  };
  torch: TorchModel;
  engines: Array<{ engine: string; width: number; threads: number; imagesPerSecond: number } | { engine: string; width: number; skipped: string }>;
}

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

const PIXEL_IMAGES = 50;

function meanAbsoluteDifference(a: Uint8Array, b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

/**
 * Pythons tried in turn: the one on PATH, then Debian's system Python, which is where
 * python3-torch installs when PATH leads to another Python (pyenv, a venv).
 */
export const PYTHON_CANDIDATES: readonly string[] = ['python3', '/usr/bin/python3'];

/** Null when `python` runs and imports torch and torchvision, else why not. */
export function torchMissing(python: string): string | null {
  const probe = spawnSync(python, ['-c', 'import torch, torchvision'], { encoding: 'utf8' });
  if (probe.error) return `${python} not found`;
  if (probe.status !== 0) return `${python}: ${(probe.stderr.trim().split('\n').pop() ?? 'import failed').trim()}`;
  return null;
}

/** The first of `candidates` with torch and torchvision, or every reason none fits. */
export function findTorchPython(candidates: readonly string[] = PYTHON_CANDIDATES): { python: string } | { missing: string } {
  const reasons: string[] = [];
  for (const python of candidates) {
    const missing = torchMissing(python);
    if (!missing) return { python };
    reasons.push(missing);
  }
  return { missing: reasons.join('; ') };
}

function runTorch<T>(python: string, args: string[]): Promise<T> {
  return runJson(python, [TORCH_PEER, ...args]);
}

function runRxcnn<T>(setup: RxcnnSetup, args: string[]): Promise<T> {
  const env = setup.tuned ? withMallocTunables(withoutTunables(process.env)) : withoutTunables(process.env);
  return runJson(process.execPath, [...(setup.tuned ? HEAP_FLAGS : []), '--import', 'tsx', RXCNN_DECODE, ...args], env);
}

/** Runs a bench helper and parses the one JSON object it prints. */
function runJson<T>(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'], env });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${args.filter((a) => a.endsWith('.py') || a.endsWith('.ts')).join(' ')} exited with code ${code}`));
      try {
        resolve(JSON.parse(out) as T);
      } catch {
        reject(new Error(`${command} printed no JSON: ${out.slice(0, 200)}`));
      }
    });
  });
}

/**
 * The same JPEGs through PIL and rxcnn's decoders (CPU per image, one thread), through PyTorch's
 * DataLoader and rxcnn's decode operator (throughput, all cores), and torchvision's MobileNetV2
 * against rxcnn's engines, all in one run on this machine.
 */
export async function benchPeer(options: PeerOptions): Promise<PeerReport> {
  const python = options.python ?? 'python3';
  const { samples, size } = options;
  const dir = await mkdtemp(join(tmpdir(), 'rxcnn-peer-'));
  try {
    const list = join(dir, 'files.txt');
    await writeFile(list, samples.map((s) => s.path).join('\n'));
    const profiled = samples.slice(0, options.profileImages);
    const profiledList = join(dir, 'profiled.txt');
    await writeFile(profiledList, profiled.map((s) => s.path).join('\n'));
    const files = await Promise.all(profiled.map((s) => readFile(s.path)));

    // Decode CPU per image: PIL and rxcnn's decoders, each in a process of its own, in alternating rounds.
    const profileSetups: RxcnnSetup[] = [
      { decoder: 'fast', tuned: true },
      { decoder: 'fast', tuned: false },
      { decoder: 'sharp', tuned: true },
    ];
    const rounds = { pil: [] as Array<Record<Stage, number>>, rxcnn: profileSetups.map(() => [] as Array<Record<Stage, number>>) };
    let pillow = '';
    const pilPixels = join(dir, 'pil.rgb');
    for (let round = 0; round < options.rounds; round++) {
      const pil = await runTorch<{ pillow: string; cpuSecondsPerImage: Record<Stage, number> }>(python, ['--task', 'profile', '--files', profiledList, '--size', String(size), '--profile-images', String(files.length), ...(round === 0 ? ['--pixels-out', pilPixels, '--pixels-images', String(PIXEL_IMAGES)] : [])]);
      pillow = pil.pillow;
      rounds.pil.push(pil.cpuSecondsPerImage);
      for (const [i, setup] of profileSetups.entries()) rounds.rxcnn[i]!.push(await runRxcnn(setup, ['profile', profiledList, String(size), setup.decoder]));
    }
    const summarize = (r: Array<Record<Stage, number>>): StageProfile => ({ cpuSecondsPerImage: { decode: median(r.map((x) => x.decode)), decodeResize: median(r.map((x) => x.decodeResize)) }, rounds: r });

    const reference = await readFile(pilPixels);
    const frame = size * size * 3;
    const pixelImages = Math.min(PIXEL_IMAGES, files.length, reference.length / frame);
    const difference = async (decoder: 'fast' | 'sharp') => {
      let sum = 0;
      for (let i = 0; i < pixelImages; i++) sum += meanAbsoluteDifference(await decodePixels(files[i]!, { size, decoder }), reference.subarray(i * frame, (i + 1) * frame));
      return sum / pixelImages;
    };
    const pixels = { images: pixelImages, fastVsPil: await difference('fast'), sharpVsPil: await difference('sharp') };

    // Throughput on all cores, files read from disk (page cache), batched: DataLoader vs the decode operator.
    const setups: Array<RxcnnSetup & { concurrency: number }> = [
      { decoder: 'fast' as const, tuned: true, concurrency: options.cores },
      { decoder: 'fast' as const, tuned: true, concurrency: BASE_OPTIONS.concurrency },
      { decoder: 'fast' as const, tuned: false, concurrency: BASE_OPTIONS.concurrency },
      { decoder: 'sharp' as const, tuned: true, concurrency: BASE_OPTIONS.concurrency },
    ].filter((s, i, all) => all.findIndex((t) => t.decoder === s.decoder && t.tuned === s.tuned && t.concurrency === s.concurrency) === i);
    const ours = setups.map(() => [] as number[]);
    const loader: number[] = [];
    for (let round = 0; round < options.rounds; round++) {
      for (const [i, setup] of setups.entries()) {
        const result = await runRxcnn<{ imagesPerSecond: number }>(setup, ['throughput', list, String(size), setup.decoder, String(setup.concurrency), String(options.batch)]);
        ours[i]!.push(result.imagesPerSecond);
      }
      const result = await runTorch<{ imagesPerSecondPasses: number[] }>(python, ['--task', 'loader', '--files', list, '--size', String(size), '--workers', String(options.workers), '--batch', String(options.batch), '--passes', '1']);
      loader.push(...result.imagesPerSecondPasses);
    }

    const torch = await runTorch<TorchModel>(python, ['--task', 'model', '--size', String(size), '--threads', `${options.cores},1`, '--batch', String(options.batch), '--widths', options.widths.join(','), '--model-batches', String(options.modelBatches)]);

    const input: ImageBatch = (await lastValueFrom(from(samples.slice(0, options.batch)).pipe(decode({ size }), batch(options.batch), toArray())))[0]!;
    const engines: PeerReport['engines'] = [];
    for (const width of options.widths) {
      for (const engine of PEER_ENGINES) {
        const loaded = await engine.load(width, size, options.cores).catch((error: unknown) => error as Error);
        if (loaded instanceof Error) {
          engines.push({ engine: engine.name, width, skipped: loaded.message });
          continue;
        }
        try {
          const bench = new Bench({ time: 0, iterations: options.modelBatches, warmupIterations: 3, warmupTime: 0 });
          bench.add(engine.name, () => loaded.run(input));
          await bench.run();
          engines.push({ engine: engine.name, width, threads: engine.threads(options.cores), imagesPerSecond: (input.y.length * 1000) / completed(bench.tasks[0]!).latency.p50 });
        } finally {
          await loaded.dispose();
        }
      }
    }
    return {
      source: options.source,
      images: samples.length,
      size,
      batch: options.batch,
      cores: options.cores,
      backend: tf.getBackend(),
      pillow,
      profile: { images: files.length, pil: summarize(rounds.pil), rxcnn: profileSetups.map((setup, i) => ({ ...setup, ...summarize(rounds.rxcnn[i]!) })) },
      pixels,
      throughput: {
        dataLoader: { workers: options.workers, imagesPerSecond: median(loader), passes: loader },
        rxcnn: setups.map((setup, i) => ({ ...setup, imagesPerSecond: median(ours[i]!), passes: ours[i]! })),
      },
      torch,
      engines,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const setupName = (r: RxcnnSetup) => `${r.decoder === 'fast' ? 'fast (@napi-rs/image, bilinear)' : 'sharp (libvips, lanczos3)'}${r.tuned ? '' : ', malloc and heap as they come'}`;
const ms = (seconds: number) => `${fixed(seconds * 1000, 2)} ms`;
const verdict = (met: boolean) => (met ? 'met' : 'MISSED');

export function formatPeerReport(report: PeerReport): string {
  const { profile: p, throughput: t, torch } = report;
  const pil = p.pil.cpuSecondsPerImage.decodeResize;
  const profileTable = formatTable(
    [`one image at a time, one thread, from memory: CPU per image (${p.images} photos, median of ${p.pil.rounds.length} alternating rounds)`, 'decode to pixels', 'decode + EXIF + RGB + resize', '÷ PIL bilinear', 'target'],
    [
      [`PIL ${report.pillow}, bilinear`, ms(p.pil.cpuSecondsPerImage.decode), ms(pil), '1.00×', ''],
      ...p.rxcnn.map((r) => [
        `rxcnn ${setupName(r)}`,
        ms(r.cpuSecondsPerImage.decode),
        ms(r.cpuSecondsPerImage.decodeResize),
        times(r.cpuSecondsPerImage.decodeResize / pil),
        r.decoder === 'fast' ? `≤ 1.10×: ${verdict(r.cpuSecondsPerImage.decodeResize / pil <= 1.1)}` : '',
      ]),
    ],
  );
  const loader = t.dataLoader.imagesPerSecond;
  const throughputTable = formatTable(
    [`decode + resize + batch of ${report.batch}, all ${report.cores} cores (${report.images} files, median of ${t.dataLoader.passes.length} rounds)`, 'img/s', 'passes', '÷ DataLoader', 'target'],
    [
      [`torch DataLoader, ${t.dataLoader.workers} worker processes, PIL bilinear`, fixed(loader), t.dataLoader.passes.map((x) => fixed(x, 0)).join(' '), '1.00×', ''],
      ...t.rxcnn.map((r) => [
        `rxcnn decode operator, ${setupName(r)}, ${r.concurrency} decoding threads`,
        fixed(r.imagesPerSecond),
        r.passes.map((x) => fixed(x, 0)).join(' '),
        times(r.imagesPerSecond / loader),
        r.decoder === 'fast' ? `≥ 1.00×: ${verdict(r.imagesPerSecond >= loader)}` : '',
      ]),
    ],
  );
  const modelRows = report.engines.flatMap((e) => {
    const runs = torch.runs.filter((r) => r.width === e.width);
    const flops = runs[0]?.flopsPerImage ?? Number.NaN;
    if ('skipped' in e) return [[`rxcnn ${e.engine}, ${e.width}`, '', `skipped: ${e.skipped}`, '', '', '', '']];
    // Raced against torch at the same thread count, in its faster memory format.
    const peer = runs.filter((r) => r.threads === e.threads).sort((a, b) => b.imagesPerSecond - a.imagesPerSecond)[0];
    const gflops = (e.imagesPerSecond * flops) / 1e9;
    return [[`rxcnn ${e.engine}, ${e.width}`, String(e.threads), fixed(e.imagesPerSecond), fixed(gflops), `${fixed((100 * gflops) / MACHINE_PEAK_GFLOPS)}%`, peer ? `${peer.memoryFormat} ${fixed(peer.imagesPerSecond)}` : 'n/a', peer ? times(e.imagesPerSecond / peer.imagesPerSecond) : 'n/a']];
  });
  const torchRows = torch.runs.map((r) => [`torchvision ${r.width}, ${r.memoryFormat}`, String(r.threads), fixed(r.imagesPerSecond), fixed(r.gflopsPerSecond), `${fixed((100 * r.gflopsPerSecond) / MACHINE_PEAK_GFLOPS)}%`, '', '']);
  const modelTable = formatTable([`MobileNetV2 inference, batch ${report.batch}, ${report.size} px`, 'threads', 'img/s', 'GFLOP/s', '% of peak', 'torch, faster format, same threads', 'rxcnn ÷ torch'], [...torchRows, ...modelRows]);
  const kernelLines = torch.runs
    .filter((r) => r.kernels)
    .map((r) => `  torch ${r.width} ${r.memoryFormat}, ${r.threads} threads: ${r.kernels!.map((k) => `${k.op} ${fixed(100 * k.share, 0)}%`).join(', ')}`);
  return [
    `${report.source}; ${report.size}×${report.size} squash resize, uint8 batches of ${report.batch}, warm-up excluded`,
    profileTable,
    `rxcnn rows run as rxcnn's commands run (GLIBC_TUNABLES=${MALLOC_TUNABLES}, node ${HEAP_FLAGS.join(' ')}); "as they come": without them, as in a user's own node process`,
    `pixels: mean absolute difference from PIL's bilinear output over the first ${report.pixels.images} photos — rxcnn fast ${fixed(report.pixels.fastVsPil, 2)} levels, rxcnn sharp ${fixed(report.pixels.sharpVsPil, 2)} levels`,
    '',
    throughputTable,
    '',
    `torch ${torch.torch}, torchvision ${torch.torchvision}, Python ${torch.python}; build: ${torch.buildConfig}; BLAS loaded: ${torch.blas}`,
    'eval mode, torch.inference_mode(), torch.set_num_threads(threads); MobileNetV2 with random weights on both sides (speed does not depend on them)',
    modelTable,
    'where torch spent one batch (self CPU time):',
    ...kernelLines,
    `peak: ${MACHINE_PEAK_TEXT}; rxcnn's ${report.backend} backend`,
  ].join('\n');
}
