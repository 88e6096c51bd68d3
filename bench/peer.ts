import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { from, lastValueFrom, toArray } from 'rxjs';
import sharp from 'sharp';
import { Bench } from 'tinybench';
import { completed } from './completed.js';
import { MACHINE_PEAK_GFLOPS } from './cpu.js';
import { openEngine } from '../src/engines/index.js';
import type { ImageBatch, Sample } from '../src/core/types.js';
import { disposeModel } from '../src/models/classifier.js';
import { createModel, disposeClassifier } from '../src/models/index.js';
import { asLayersModel } from '../src/models/persistence.js';
import { batch } from '../src/operators/batch.js';
import { decode, decodeImage } from '../src/operators/decode.js';
import { predict } from '../src/operators/predict.js';
import { fixed, formatTable, times } from './table.js';

const TORCH_PEER = fileURLToPath(new URL('./peer/torch_peer.py', import.meta.url));
export const HOW_TO_INSTALL_TORCH = 'apt-get install -y python3-torch python3-torchvision libopenblas0-openmp (Debian/Ubuntu), or pip install torch torchvision';

export interface PeerOptions {
  samples: readonly Sample[];
  source: string;
  size: number;
  batch: number;
  /** Decode workers on both sides: DataLoader processes, rxcnn's decode concurrency. */
  workers: number;
  /** Torch intra-op threads for the headline model comparison. */
  threads: number;
  widths: readonly number[];
  /** Timed passes over all images, after one warm-up pass. */
  passes: number;
  modelBatches: number;
  python?: string;
}

interface TorchLoaderPass {
  interpolation: string;
  images: number;
  imagesPerSecond: number;
  imagesPerSecondPasses: number[];
}
interface TorchModelRun {
  width: number;
  threads: number;
  imagesPerSecond: number;
  flopsPerImage: number;
  gflopsPerSecond: number;
}
export interface TorchResult {
  python: string;
  torch: string;
  torchvision: string;
  pillow: string;
  /** The BLAS library torch loaded: Debian's reference BLAS makes its 1×1 convolutions ~5× slower than OpenBLAS. */
  blas: string;
  loader: { workers: number; batch: number; passes: TorchLoaderPass[] };
  model: TorchModelRun[];
  profile: StageProfile | null;
}

/** One image at a time on one thread: CPU seconds per image to decode, and to decode and resize. */
export interface StageProfile {
  images: number;
  cpuSecondsPerImage: { decode: number; decodeResize: number };
}

export interface PeerReport {
  source: string;
  images: number;
  size: number;
  batch: number;
  workers: number;
  backend: string;
  backendThreads: number;
  torch: TorchResult;
  decode: Array<{ concurrency: number; imagesPerSecond: number; passes: number[] }>;
  /** rxcnn's MobileNetV2 on the main thread (threads 1) and on `threads` worker threads. */
  model: Array<{ width: number; threads: number; imagesPerSecond: number; gflopsPerSecond: number }>;
  profile: StageProfile;
}

const PROFILE_IMAGES = 300;

/** sharp's side of the per-stage profile: bare decode to pixels, and the decode operator's whole per-image work. */
async function profileSharp(samples: readonly Sample[], size: number): Promise<StageProfile> {
  const files = await Promise.all(samples.slice(0, PROFILE_IMAGES).map((s) => readFile(s.path)));
  const stages: Array<[keyof StageProfile['cpuSecondsPerImage'], (i: number) => Promise<unknown>]> = [
    ['decode', (i) => sharp(files[i]).raw().toBuffer()],
    ['decodeResize', (i) => decodeImage(samples[i]!, { size })],
  ];
  const perImage = { decode: 0, decodeResize: 0 };
  for (const [name, stage] of stages) {
    for (let i = 0; i < files.length; i++) await stage(i); // warm-up
    const start = process.cpuUsage();
    for (let i = 0; i < files.length; i++) await stage(i);
    const used = process.cpuUsage(start);
    perImage[name] = (used.user + used.system) / 1e6 / files.length;
  }
  return { images: files.length, cpuSecondsPerImage: perImage };
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

function runTorch(python: string, args: string[]): Promise<TorchResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, [TORCH_PEER, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`torch_peer.py exited with code ${code}`));
      try {
        resolve(JSON.parse(out) as TorchResult);
      } catch {
        reject(new Error(`torch_peer.py printed no JSON: ${out.slice(0, 200)}`));
      }
    });
  });
}

async function wasmThreads(): Promise<number> {
  if (tf.getBackend() !== 'wasm') return tf.getBackend() === 'cpu' ? 1 : Number.NaN;
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  return wasm.getThreadsCount();
}

/**
 * The same JPEGs through PyTorch's DataLoader + PIL/torchvision transforms and through rxcnn's
 * decode stage, and torchvision's MobileNetV2 against rxcnn's, all in one run on this machine.
 */
export async function benchPeer(options: PeerOptions): Promise<PeerReport> {
  const python = options.python ?? 'python3';
  const { samples, size } = options;
  const dir = await mkdtemp(join(tmpdir(), 'rxcnn-peer-'));
  try {
    const list = join(dir, 'files.txt');
    await writeFile(list, samples.map((s) => s.path).join('\n'));

    const decodeBench = new Bench({ time: 0, iterations: options.passes, warmupIterations: 1, warmupTime: 0 });
    const concurrencies = [...new Set([options.workers, 4])];
    const passTimes = new Map<number, number[]>(concurrencies.map((c) => [c, []]));
    for (const c of concurrencies) {
      decodeBench.add(`decode c=${c}`, async () => {
        const t0 = performance.now();
        await lastValueFrom(from(samples).pipe(decode({ size, concurrency: c }), batch(options.batch), toArray()));
        passTimes.get(c)!.push(samples.length / ((performance.now() - t0) / 1000));
      });
    }
    await decodeBench.run();
    const decodeRows = concurrencies.map((c) => {
      const result = completed(decodeBench.getTask(`decode c=${c}`)!);
      // The first recorded pass is tinybench's warm-up.
      return { concurrency: c, imagesPerSecond: (samples.length * 1000) / result.period, passes: passTimes.get(c)!.slice(1) };
    });

    const torch = await runTorch(python, [
      '--files', list, '--size', String(size), '--resize', 'squash', '--workers', String(options.workers), '--threads', `${options.threads},1`,
      '--batch', String(options.batch), '--passes', String(options.passes), '--widths', options.widths.join(','), '--model-batches', String(options.modelBatches),
      '--profile-images', String(PROFILE_IMAGES),
    ]);
    const profile = await profileSharp(samples, size);

    const input: ImageBatch = (await lastValueFrom(from(samples.slice(0, options.batch)).pipe(decode({ size }), batch(options.batch), toArray())))[0]!;
    const modelRows: PeerReport['model'] = [];
    for (const width of options.widths) {
      const model = await createModel('mobilenetv2', { classes: 1000, alpha: width, weights: 'none', inputSize: size });
      const whole = asLayersModel(model);
      const engine = await openEngine(whole, { preprocessing: model.preprocessing, workers: options.threads });
      try {
        const bench = new Bench({ time: 0, iterations: options.modelBatches, warmupIterations: 3, warmupTime: 0 });
        bench.add('predict', () => lastValueFrom(from([input]).pipe(predict(model))));
        if (engine.name === 'tfjs-workers') bench.add('predict on workers', () => lastValueFrom(from([input]).pipe(predict(model, engine))));
        await bench.run();
        const flops = torch.model.find((m) => m.width === width)?.flopsPerImage ?? Number.NaN;
        for (const task of bench.tasks) {
          const result = completed(task);
          const imagesPerSecond = (input.y.length * 1000) / result.latency.p50;
          modelRows.push({ width, threads: task.name === 'predict' ? 1 : options.threads, imagesPerSecond, gflopsPerSecond: (imagesPerSecond * flops) / 1e9 });
        }
      } finally {
        await engine.dispose();
        disposeModel(whole);
        disposeClassifier(model);
      }
    }
    return {
      source: options.source,
      images: samples.length,
      size,
      batch: options.batch,
      workers: options.workers,
      backend: tf.getBackend(),
      backendThreads: await wasmThreads(),
      torch,
      decode: decodeRows,
      model: modelRows,
      profile,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function formatPeerReport(report: PeerReport): string {
  const t = report.torch;
  const ours = report.decode.find((d) => d.concurrency === report.workers)!;
  const decodeTable = formatTable(
    ['decode + resize + batch (uint8)', 'workers', 'img/s', 'rxcnn (c=' + report.workers + ') ÷ this'],
    [
      ...report.decode.map((d) => [`rxcnn decode (sharp, lanczos3) + batch`, `concurrency ${d.concurrency}`, fixed(d.imagesPerSecond), times(ours.imagesPerSecond / d.imagesPerSecond)]),
      ...t.loader.passes.map((p) => [`torch DataLoader, PIL ${p.interpolation} + PILToTensor`, `${t.loader.workers} processes`, fixed(p.imagesPerSecond), times(ours.imagesPerSecond / p.imagesPerSecond)]),
    ],
  );
  const modelTable = formatTable(
    ['MobileNetV2 inference, batch ' + report.batch, 'threads', 'img/s', 'GFLOP/image', 'GFLOP/s', '% of peak', 'rxcnn ÷ this'],
    report.model.flatMap((m) => {
      const torchRuns = t.model.filter((r) => r.width === m.width);
      const flops = torchRuns[0]?.flopsPerImage ?? Number.NaN;
      return [
        [`rxcnn ${m.width} (${report.backend}${m.threads > 1 ? ', workers' : ''})`, String(m.threads), fixed(m.imagesPerSecond), fixed(flops / 1e9, 3), fixed(m.gflopsPerSecond), `${fixed((100 * m.gflopsPerSecond) / MACHINE_PEAK_GFLOPS)}%`, '1.00×'],
        ...torchRuns.map((r) => [`torchvision ${r.width}`, String(r.threads), fixed(r.imagesPerSecond), fixed(r.flopsPerImage / 1e9, 3), fixed(r.gflopsPerSecond), `${fixed((100 * r.gflopsPerSecond) / MACHINE_PEAK_GFLOPS)}%`, times(m.imagesPerSecond / r.imagesPerSecond)]),
      ];
    }),
  );
  const ms = (seconds: number) => `${fixed(seconds * 1000, 2)} ms`;
  const stageRows = (name: string, p: StageProfile | null) =>
    p ? [[name, ms(p.cpuSecondsPerImage.decode), ms(p.cpuSecondsPerImage.decodeResize - p.cpuSecondsPerImage.decode), ms(p.cpuSecondsPerImage.decodeResize), fixed(1 / p.cpuSecondsPerImage.decodeResize, 0)]] : [];
  const profileTable = formatTable(
    [`one image at a time, CPU per image (${report.profile.images} images)`, 'decode', 'resize etc.', 'decode + resize', 'img/s per core'],
    [...stageRows('rxcnn: sharp (lanczos3, EXIF, sRGB)', report.profile), ...stageRows('PIL (Lanczos, EXIF, RGB)', t.profile)],
  );
  return [
    `${report.source}; ${report.size}×${report.size} squash resize, batch ${report.batch}, warm-up pass excluded`,
    `torch ${t.torch} (BLAS: ${t.blas}), torchvision ${t.torchvision}, Pillow ${t.pillow}, Python ${t.python}; MobileNetV2 with random weights on both sides (speed does not depend on them)`,
    decodeTable,
    profileTable,
    modelTable,
    `peak: ≈${MACHINE_PEAK_GFLOPS} GFLOP/s FP32 (2 cores, AVX2 FMA); rxcnn's ${report.backend} backend runs ${report.backendThreads} thread(s) per instance (the worker rows: one instance per worker thread), torch ${t.model.map((m) => m.threads).filter((v, i, a) => a.indexOf(v) === i).join(' and ')} intra-op threads`,
  ].join('\n');
}
