import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModel, disposeClassifier } from '../src/models/index.js';
import { downloadWeights } from '../src/models/download.js';
import { embeddedWeights, weightsCacheDir } from '../src/models/weights.js';
import { temporaryDir } from './helpers.js';

const FILE = 'mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5';
let server: Server;
let base: string;
let requests = 0;

beforeAll(async () => {
  const body = await readFile(embeddedWeights(FILE));
  server = createServer((req, res) => {
    requests++;
    if (req.url === `/${FILE}`) {
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('downloadWeights', () => {
  it('downloads once into the cache, verified by SHA-256, then serves the cached file', async () => {
    const dir = await temporaryDir();
    const sha256 = createHash('sha256').update(await readFile(embeddedWeights(FILE))).digest('hex');
    const before = requests;
    const path = await downloadWeights({ file: FILE, url: `${base}/${FILE}`, sha256 }, { dir });
    expect(path).toBe(join(dir, FILE));
    expect(await downloadWeights({ file: FILE, url: `${base}/${FILE}`, sha256 }, { dir })).toBe(path);
    expect(requests - before).toBe(1);
  });

  it('discards a download whose checksum is wrong, leaving nothing behind', async () => {
    const dir = await temporaryDir();
    await expect(downloadWeights({ file: FILE, url: `${base}/${FILE}`, sha256: '0'.repeat(64) }, { dir })).rejects.toThrow(/SHA-256 is [0-9a-f]{64}, expected 0{64}; the download was discarded/);
    await expect(downloadWeights({ file: FILE, url: `${base}/${FILE}`, md5: 'f'.repeat(32) }, { dir })).rejects.toThrow(/MD5 is/);
    expect(await readdir(dir)).toEqual([]);
  });

  it('offline or missing: one line saying which file to put where', async () => {
    const dir = await temporaryDir();
    await expect(downloadWeights({ file: 'x.h5', url: `${base}/x.h5` }, { dir })).rejects.toThrow(new RegExp(`^cannot download ${base}/x.h5 \\(HTTP 404\\); put x.h5 into ${dir}/ or pass --weights <file>$`));
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await expect(downloadWeights({ file: 'x.h5', url: `http://127.0.0.1:${port}/x.h5` }, { dir })).rejects.toThrow(/^cannot download http:\/\/127\.0\.0\.1:\d+\/x\.h5 \(ECONNREFUSED\); put x\.h5 into /);
  });

  it('--weights URL: createModel fetches into the cache and loads it', async () => {
    const model = await createModel('mobilenetv2', { classes: 2, inputSize: 64, weights: `${base}/${FILE}` });
    expect(model.weights).toBe(`imagenet (${FILE})`); // the published file (its sha256 matches): the same weights as --weights imagenet
    expect(await readFile(join(weightsCacheDir(), FILE))).toEqual(await readFile(embeddedWeights(FILE)));
    disposeClassifier(model);
  });
});
