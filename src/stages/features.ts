import pLimit from 'p-limit';
import { concat, concatMap, map, Observable, shareReplay, Subscription, toArray } from 'rxjs';
import type { FeatureBatch, ImageBatch, Sample } from '../core/types.js';
import type { InferenceEngine } from '../engines/engine.js';
import { FeatureCache } from '../features/cache.js';
import { embed } from '../operators/embed.js';
import type { Classifier } from '../models/classifier.js';
import { concatFeatures } from '../core/features.js';
import { measure, type Meter } from '../operators/measure.js';
import { countImages } from './feed.js';

/** A cached feature view of an image: the image itself or its mirror. */
export type View = 'plain' | 'mirror';

/** Features by image path, one table per view. */
export type FeatureTables = ReadonlyArray<ReadonlyMap<string, Float32Array>>;

export interface FeatureStoreOptions {
  /** Where feature caches live; the store's own folder under it is named by what determines the features. */
  root: string;
  resize: string;
  /** The decoder's pixels are the features' input: part of the cache key. */
  decoder: string;
  views: readonly View[];
  /** Opens the engine computing missing features (on the backbone); called at most once per `load`. */
  engine: () => Promise<InferenceEngine>;
  /** The images of `samples` as seen in `view`, batched, through `consume` (an image feed). */
  feed: (samples: readonly Sample[], view: View, consume: (batches: Observable<ImageBatch>) => Observable<FeatureBatch>) => Observable<FeatureBatch>;
  /** Times the `embed` operator when given. */
  meter?: Meter;
  onProgress?: (done: number, total: number) => void;
  onWarning?: (line: string) => void;
}

/**
 * A frozen backbone's features of a set of images, one table per view: read from the on-disk
 * cache, and what is missing computed by an inference engine and cached. Loaded once and replayed
 * to every epoch; unsubscribed before it is done (an interrupted run), the computing stops.
 */
export class FeatureStore {
  readonly cache: FeatureCache;
  private cacheWritable = true;

  constructor(
    private readonly model: Classifier,
    private readonly options: FeatureStoreOptions,
  ) {
    if (!model.backbone) throw new Error(`${model.name} has no frozen backbone to cache features of`);
    this.cache = new FeatureCache(options.root, { model: model.name, weights: model.weights, preprocessing: model.preprocessing, inputSize: model.inputSize, resize: options.resize, decoder: options.decoder });
  }

  get views(): readonly View[] {
    return this.options.views;
  }

  /** The tables of `samples`' features, computed once however many subscribe. */
  load(samples: readonly Sample[]): Observable<FeatureTables> {
    return new Observable<FeatureTables>((subscriber) => {
      const running = new Subscription();
      this.compute(samples, running).then(
        (tables) => {
          subscriber.next(tables);
          subscriber.complete();
        },
        (error: unknown) => subscriber.error(error),
      );
      return running;
    }).pipe(shareReplay({ bufferSize: 1, refCount: true }));
  }

  private async compute(samples: readonly Sample[], running: Subscription): Promise<FeatureTables> {
    const dim = this.model.backbone!.outputs[0]!.shape[1] as number;
    const limit = pLimit(16);
    const keys = await Promise.all(samples.map((s) => limit(() => FeatureCache.contentKey(s.path).catch(() => null))));
    const keyOf = new Map(samples.map((s, i) => [s.path, keys[i]] as const));
    const tables: Array<Map<string, Float32Array>> = [];
    let engine: InferenceEngine | undefined;
    try {
      for (const view of this.options.views) {
        const table = new Map<string, Float32Array>();
        const entry = (path: string) => (keyOf.get(path) ? `${keyOf.get(path)}${view === 'mirror' ? '-mirror' : ''}` : null);
        const misses: Sample[] = [];
        await Promise.all(
          samples.map((s) =>
            limit(async () => {
              const key = entry(s.path);
              const hit = key ? await this.cache.get(key, dim) : null;
              if (hit) table.set(s.path, hit);
              else misses.push(s);
            }),
          ),
        );
        misses.sort((a, b) => a.label - b.label || (a.path < b.path ? -1 : 1));
        // started once for every view, and only when something is missing
        if (misses.length > 0 && !engine) {
          engine = await this.options.engine();
          if (running.closed) break;
        }
        let done = 0;
        await drain(
          running,
          this.options.feed(misses, view, (batches) => batches.pipe(this.options.meter ? measure(this.options.meter, 'embed', embed(this.model, engine), countImages) : embed(this.model, engine))).pipe(
            concatMap(async (fb) => {
              for (let r = 0; r < fb.paths.length; r++) {
                const row = fb.features.slice(r * fb.shape[1], (r + 1) * fb.shape[1]);
                table.set(fb.paths[r]!, row);
                const key = entry(fb.paths[r]!);
                if (key) await this.write(key, row);
              }
              done += fb.paths.length;
              this.options.onProgress?.(done, misses.length);
              return fb;
            }),
          ),
        );
        tables.push(table);
        if (running.closed) break;
      }
    } finally {
      await engine?.dispose();
    }
    return tables;
  }

  /** A cache that cannot be written (a full disk, a read-only folder) costs a warning, not the run. */
  private async write(key: string, row: Float32Array): Promise<void> {
    if (!this.cacheWritable) return;
    await this.cache.set(key, row).catch((error: unknown) => {
      this.cacheWritable = false;
      this.options.onWarning?.(`feature cache not written (${(error as NodeJS.ErrnoException).code ?? String(error)}): ${this.cache.dir}; features are kept in memory for this run`);
    });
  }
}

/**
 * Feature batches of `samples` (those that have features), in the given order. Each view (the
 * image, its mirror) is a training row of its own (`rows`), or the views are averaged (`mean`, for
 * evaluation).
 */
export function featureBatches(samples: readonly Sample[], views: FeatureTables, size: number, combine: 'rows' | 'mean'): FeatureBatch[] {
  const present = samples.filter((s) => views.every((v) => v.has(s.path)));
  const rows: Array<{ sample: Sample; features: Float32Array }> = present.flatMap((sample) => {
    const each = views.map((v) => v.get(sample.path)!);
    if (combine === 'rows') return each.map((features) => ({ sample, features }));
    const mean = new Float32Array(each[0]!.length);
    for (const f of each) for (let d = 0; d < mean.length; d++) mean[d]! += f[d]! / each.length;
    return [{ sample, features: mean }];
  });
  const out: FeatureBatch[] = [];
  for (let i = 0; i < rows.length; i += size) {
    const chunk = rows.slice(i, i + size);
    const dim = chunk[0]!.features.length;
    const features = new Float32Array(chunk.length * dim);
    chunk.forEach((row, r) => features.set(row.features, r * dim));
    out.push({ features, shape: [chunk.length, dim], y: Int32Array.from(chunk, (row) => row.sample.label), paths: chunk.map((row) => row.sample.path) });
  }
  return out;
}

/**
 * An ensemble's feature tables: each member's store loaded in turn (one engine at a time), then
 * per view every image's member features side by side ({@link concatFeatures}; images some member
 * lacks are left out). Loaded once and replayed, like one store's.
 */
export function ensembleFeatures(stores: readonly FeatureStore[], samples: readonly Sample[], featureNorm?: number): Observable<FeatureTables> {
  return concat(...stores.map((store) => store.load(samples))).pipe(
    toArray(),
    map((members) =>
      members[0]!.map((_, view) => {
        const table = new Map<string, Float32Array>();
        for (const { path } of samples) {
          const parts = members.map((tables) => tables[view]!.get(path));
          if (parts.every((p) => p !== undefined)) table.set(path, concatFeatures(parts as Float32Array[], featureNorm));
        }
        return table;
      }),
    ),
    shareReplay({ bufferSize: 1, refCount: true }),
  );
}

/** Runs `source` to completion for its side effects, or until `owner` is unsubscribed. */
function drain<T>(owner: Subscription, source: Observable<T>): Promise<void> {
  return new Promise((resolve, reject) => {
    if (owner.closed) return resolve();
    owner.add(source.subscribe({ error: reject, complete: () => resolve() }));
    owner.add(() => resolve());
  });
}
