import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useBackend } from '../src/backend.js';

// Caches (weights, features) go to a fresh folder per test file, never the user's.
process.env['RXCNN_CACHE'] = mkdtempSync(join(tmpdir(), 'rxcnn-cache-'));

// Tests compute on the best backend this machine has, as the CLI's `auto` would.
await useBackend('auto');
