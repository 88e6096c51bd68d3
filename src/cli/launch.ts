/**
 * The npm scripts' entry: `node --import tsx src/cli/launch.ts <script> [args…]` runs `<script>` (a
 * command of src/cli or bench/run.ts) with glibc's malloc tuned for decoding ({@link MALLOC_TUNABLES}).
 * glibc reads its tunables only when a process starts, so on Linux, when the environment does not
 * have them yet, the script runs in a child node started with them — one relay, as `tsx <script>`
 * was before (it starts a child for its loader). Elsewhere, or with them already set, it runs in
 * this process.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MALLOC_TUNABLES, withMallocTunables } from '../core/allocator.js';

const [script, ...args] = process.argv.slice(2);
if (!script) {
  console.error('usage: node --import tsx src/cli/launch.ts <script> [args…]');
  process.exit(2);
}
const entry = resolve(script);
const env = withMallocTunables(process.env);
if (process.platform !== 'linux' || env === process.env) {
  process.argv = [process.argv[0]!, entry, ...args];
  await import(pathToFileURL(entry).href);
} else {
  const child = spawn(process.execPath, [...process.execArgv, entry, ...args], { stdio: 'inherit', env });
  // A terminal's Ctrl-C reaches the child too (same process group); the command treats the repeat
  // within a second as the same key press. A signal sent to this process alone is passed on.
  const relay = (signal: NodeJS.Signals) => child.kill(signal);
  const relayed: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of relayed) process.on(signal, relay);
  child.on('error', (error) => {
    console.error(`rxcnn: cannot start ${script}: ${error.message} (GLIBC_TUNABLES=${MALLOC_TUNABLES})`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    if (signal) {
      // end as the child ended, so a shell sees the same signal
      for (const s of relayed) process.off(s, relay);
      process.kill(process.pid, signal);
    } else process.exit(code ?? 1);
  });
}
