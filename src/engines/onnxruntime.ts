import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import type { ImageBatch } from '../core/types.js';
import type { EngineOutput, InferenceEngine } from './engine.js';

type Ort = typeof import('onnxruntime-node');

/** Which ONNX Runtime execution provider computes: `auto` takes the fastest that loads here. */
export type OnnxProviderChoice = 'auto' | 'cuda' | 'dml' | 'coreml' | 'cpu';
export const ONNX_PROVIDER_CHOICES: readonly OnnxProviderChoice[] = ['auto', 'cuda', 'dml', 'coreml', 'cpu'];

interface ProviderCandidate {
  choice: Exclude<OnnxProviderChoice, 'auto'>;
  /** Where onnxruntime-node has it at all. */
  platforms: readonly string[];
  howToGet: string;
  /** A reason it cannot load here before a session is tried (a missing library), or null. */
  missing?: (binDir: string) => string | null;
}

const PLATFORM = `${process.platform}/${process.arch}`;

const CANDIDATES: readonly ProviderCandidate[] = [
  {
    choice: 'cuda',
    platforms: ['linux/x64'],
    // onnxruntime-node's install script fetches the CUDA 12 provider from NuGet; rxcnn's package.json
    // turns that script off (allowScripts) so that `npm ci` works offline.
    howToGet:
      'on Linux x64 with an NVIDIA GPU, CUDA 12 and cuDNN 9: ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js (downloads the provider from NuGet; untested in rxcnn)',
    missing: (binDir) => (existsSync(join(binDir, 'libonnxruntime_providers_cuda.so')) ? null : 'the CUDA provider library is not installed (onnxruntime-node ships it separately)'),
  },
  { choice: 'dml', platforms: ['win32/x64', 'win32/arm64'], howToGet: 'Windows with a DirectX 12 GPU (DirectML ships inside onnxruntime-node there)' },
  { choice: 'coreml', platforms: ['darwin/arm64', 'darwin/x64'], howToGet: 'macOS (CoreML ships inside onnxruntime-node there)' },
  { choice: 'cpu', platforms: [PLATFORM], howToGet: 'npm install onnxruntime-node' },
];

const firstLine = (error: unknown) => (error instanceof Error ? error.message : String(error)).split('\n')[0]!;

let loaded: Promise<Ort | { failure: string }> | null = null;

/** onnxruntime-node, or why its native library does not load here (one line). Loaded once. */
export function loadOnnxRuntime(): Promise<Ort | { failure: string }> {
  loaded ??= import('onnxruntime-node').then(
    (module) => ((module as { default?: Ort }).default ?? module) as Ort,
    (error: unknown) => {
      const code = (error as NodeJS.ErrnoException).code;
      const why = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' ? 'onnxruntime-node is not installed' : firstLine(error);
      return { failure: `ONNX Runtime unavailable: ${why}` };
    },
  );
  return loaded;
}

/** Null when ONNX Runtime loads here, else the one-line reason (so `--engine auto` can fall back to tfjs). */
export async function onnxRuntimeUnavailable(): Promise<string | null> {
  const ort = await loadOnnxRuntime();
  return 'failure' in ort ? ort.failure : null;
}

async function requireOnnxRuntime(): Promise<Ort> {
  const ort = await loadOnnxRuntime();
  if ('failure' in ort) throw new Error(ort.failure);
  return ort;
}

/** The folder holding onnxruntime-node's native libraries for this platform (where its install script puts providers). */
function binaryDir(): string {
  const pkg = createRequire(import.meta.url).resolve('onnxruntime-node/package.json');
  return join(dirname(pkg), 'bin', 'napi-v6', process.platform, process.arch);
}

export interface OnnxEngineOptions {
  /** Execution provider (`auto`: CUDA → DirectML/CoreML → CPU, the first that loads). */
  provider?: OnnxProviderChoice;
  /** Intra-op threads (default: every core). */
  threads?: number;
  /**
   * Let idle intra-op threads spin-wait for the next operator (ONNX Runtime's default). Off by
   * default here: rxcnn decodes images on the same cores while it infers, and on a 2-core machine
   * shared with other work MobileNetV2-0.5 ran 2× faster without spinning (183–202 vs 97–104 img/s).
   */
  spinning?: boolean;
  /** Write ONNX Runtime's per-node profile (a JSON trace, `<prefix>_<date>.json`) with this file prefix; `endProfiling()` closes it. */
  profile?: string;
}

export interface OnnxRuntimeEngine extends InferenceEngine {
  readonly name: 'onnxruntime';
  /** Faster providers `auto` passed over, and why (one line each). */
  readonly skipped: ReadonlyArray<{ provider: string; reason: string }>;
  /** Ends profiling (with `profile`): ONNX Runtime writes its trace file then. */
  endProfiling(): void;
}

/**
 * An inference engine over an ONNX Runtime session on an rxcnn export (`exportOnnx`'s bytes or a
 * `.onnx` file): uint8 NHWC pixels in, float32 `[n, d]` out. The provider is chosen like rxcnn's
 * tfjs backends: `auto` takes the fastest that loads and says why it skipped the others; an
 * explicit one that cannot load fails with one line saying how to get it.
 */
export async function createOnnxEngine(model: Uint8Array | string, options: OnnxEngineOptions = {}): Promise<OnnxRuntimeEngine> {
  const choice = options.provider ?? 'auto';
  if (!ONNX_PROVIDER_CHOICES.includes(choice)) throw new Error(`unknown ONNX Runtime provider '${choice}'; use one of ${ONNX_PROVIDER_CHOICES.join(', ')}`);
  const threads = options.threads ?? availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`threads must be a positive integer, got ${threads}`);
  const ort = await requireOnnxRuntime();
  const built = new Set(ort.listSupportedBackends().map((b) => b.name));
  const binDir = binaryDir();
  const skipped: Array<{ provider: string; reason: string }> = [];
  for (const candidate of CANDIDATES) {
    if (choice !== 'auto' && candidate.choice !== choice) continue;
    const refuse = (reason: string) => {
      if (choice !== 'auto') throw new Error(`ONNX Runtime provider '${choice}' is unavailable (${reason}); to get it: ${candidate.howToGet}`);
      skipped.push({ provider: candidate.choice, reason });
    };
    if (!candidate.platforms.includes(PLATFORM) || !built.has(candidate.choice)) {
      // a provider of another platform (CoreML on Linux) is no faster option passed over: auto does not list it
      if (choice !== 'auto') refuse(`not in onnxruntime-node on ${PLATFORM}`);
      continue;
    }
    const missing = candidate.missing?.(binDir);
    if (missing) {
      refuse(missing);
      continue;
    }
    const sessionOptions: InferenceSession.SessionOptions = {
      executionProviders: [candidate.choice],
      intraOpNumThreads: threads,
      // one operator at a time, each over all the threads: a CNN is a chain
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      extra: { session: { intra_op: { allow_spinning: options.spinning ? '1' : '0' } } },
      ...(options.profile ? { enableProfiling: true, profileFilePrefix: options.profile } : {}),
    };
    let session: InferenceSession;
    try {
      session = typeof model === 'string' ? await ort.InferenceSession.create(model, sessionOptions) : await ort.InferenceSession.create(model, sessionOptions);
    } catch (error) {
      // a model that does not load on the CPU will not load anywhere: not a provider problem
      if (candidate.choice === 'cpu') throw new Error(`ONNX Runtime could not load the model: ${firstLine(error)}`);
      refuse(firstLine(error));
      continue;
    }
    return new Engine(ort, session, candidate.choice, threads, skipped);
  }
  throw new Error(`no ONNX Runtime provider could be loaded: ${skipped.map((s) => `${s.provider}: ${s.reason}`).join('; ')}`);
}

class Engine implements OnnxRuntimeEngine {
  readonly name = 'onnxruntime' as const;
  private session: InferenceSession | null;
  private readonly inputName: string;
  private readonly outputName: string;

  constructor(
    private readonly ort: Ort,
    session: InferenceSession,
    readonly device: string,
    readonly threads: number,
    readonly skipped: ReadonlyArray<{ provider: string; reason: string }>,
  ) {
    this.session = session;
    if (session.inputNames.length !== 1 || session.outputNames.length !== 1) throw new Error(`an ONNX engine needs a model with one input and one output, got ${session.inputNames.length} and ${session.outputNames.length}`);
    this.inputName = session.inputNames[0]!;
    this.outputName = session.outputNames[0]!;
  }

  async run(batch: ImageBatch): Promise<EngineOutput> {
    if (!this.session) throw new Error('this ONNX Runtime engine has been disposed');
    const [n] = batch.shape;
    if (batch.x.length !== batch.shape.reduce((a, b) => a * b, 1)) throw new Error(`a batch of shape [${batch.shape.join(', ')}] needs ${batch.shape.reduce((a, b) => a * b, 1)} bytes, got ${batch.x.length}`);
    // the pixels are handed over as they are (a view, no copy)
    const input = new this.ort.Tensor('uint8', batch.x, batch.shape);
    try {
      const results = await this.session.run({ [this.inputName]: input });
      const output: Tensor = results[this.outputName]!;
      const values = output.data as Float32Array;
      const d = output.dims.slice(1).reduce((a, b) => a * b, 1);
      if (output.dims[0] !== n) throw new Error(`the ONNX model gave ${output.dims[0]} rows for a batch of ${n}`);
      return { values, shape: [n, d] };
    } finally {
      input.dispose();
    }
  }

  endProfiling(): void {
    if (!this.session) throw new Error('this ONNX Runtime engine has been disposed');
    this.session.endProfiling();
  }

  async dispose(): Promise<void> {
    const session = this.session;
    this.session = null;
    await session?.release();
  }
}
