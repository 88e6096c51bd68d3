import { useBackend } from '../src/backend.js';

// Tests compute on the best backend this machine has, as the CLI's `auto` would.
await useBackend('auto');
