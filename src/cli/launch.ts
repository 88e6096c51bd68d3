/**
 * The npm scripts' entry: `node --import tsx src/cli/launch.ts <script> [args…]` runs `<script>` (a
 * command of src/cli or bench/run.ts) with glibc's malloc tuned for decoding ({@link MALLOC_TUNABLES})
 * and V8's old generation sized for the pixels that flow through it ({@link HEAP_FLAGS}). Both are
 * read only when a process starts, so unless this process already runs with them, the script runs in
 * a child node started with them — one relay, as `tsx <script>` was before (it starts a child for its
 * loader). The malloc setting applies on Linux only.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { HEAP_FLAGS, MALLOC_TUNABLES, withHeapFlags, withMallocTunables } from '../core/allocator.js';

const [script, ...args] = process.argv.slice(2);
if (!script) {
  console.error('usage: node --import tsx src/cli/launch.ts <script> [args…]');
  process.exit(2);
}
const entry = resolve(script);
const env = process.platform === 'linux' ? withMallocTunables(process.env) : process.env;
const execArgv = withHeapFlags(process.execArgv);
if (env === process.env && execArgv === process.execArgv) {
  process.argv = [process.argv[0]!, entry, ...args];
  await import(pathToFileURL(entry).href);
} else {
  const child = spawn(process.execPath, [...execArgv, entry, ...args], { stdio: 'inherit', env });
  // A terminal's Ctrl-C reaches the child too (same process group); the command treats the repeat
  // within a second as the same key press. A signal sent to this process alone is passed on.
  const relay = (signal: NodeJS.Signals) => child.kill(signal);
  const relayed: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of relayed) process.on(signal, relay);
  child.on('error', (error) => {
    console.error(`rxcnn: cannot start ${script}: ${error.message} (GLIBC_TUNABLES=${MALLOC_TUNABLES}, ${HEAP_FLAGS.join(' ')})`);
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
