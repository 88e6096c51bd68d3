import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { HEAP_FLAGS, MALLOC_TUNABLES, withHeapFlags, withMallocTunables, withoutTunables } from '../src/core/allocator.js';
import { temporaryDir } from './helpers.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** `node --import tsx src/cli/launch.ts <script> …args` as the npm scripts run it: exit code, signal, stdout. */
function launch(script: string, args: string[], env: NodeJS.ProcessEnv, nodeArgs: string[] = []): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', 'src/cli/launch.ts', script, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout }));
  });
}

/** A command that prints what the launcher handed it, then ends as its first argument says. */
async function probe(): Promise<string> {
  const script = join(await temporaryDir(), 'probe.ts');
  await writeFile(
    script,
    `const [end, ...rest] = process.argv.slice(2);
console.log(JSON.stringify({ tunables: process.env.GLIBC_TUNABLES ?? null, execArgv: process.execArgv, argv: rest, main: process.argv[1] }));
if (end === 'signal') process.kill(process.pid, 'SIGTERM');
else process.exitCode = Number(end);
`,
  );
  return script;
}

describe('the npm scripts launcher (glibc malloc and the V8 heap set for decoding)', () => {
  it('adds the malloc tunables to what GLIBC_TUNABLES already says, and keeps a malloc setting the user made', () => {
    expect(withMallocTunables({}).GLIBC_TUNABLES).toBe(MALLOC_TUNABLES);
    expect(withMallocTunables({ GLIBC_TUNABLES: 'glibc.cpu.hwcaps=-AVX2' }).GLIBC_TUNABLES).toBe(`glibc.cpu.hwcaps=-AVX2:${MALLOC_TUNABLES}`);
    const own = { GLIBC_TUNABLES: 'glibc.malloc.arena_max=1' };
    expect(withMallocTunables(own)).toBe(own);
    expect(withoutTunables({ GLIBC_TUNABLES: 'x', HOME: '/h' })).toEqual({ HOME: '/h' });
  });

  it("adds the heap flags to node's arguments, and keeps an old-generation size the user chose", () => {
    expect(withHeapFlags(['--import', 'tsx'])).toEqual(['--import', 'tsx', ...HEAP_FLAGS]);
    const own = ['--initial-old-space-size=512'];
    expect(withHeapFlags(own)).toBe(own);
    expect(withHeapFlags(['--initial_old_space_size', '64'])).toEqual(['--initial_old_space_size', '64']);
  });

  it('runs the command with the tunables in its environment, its arguments and exit code passed through', async () => {
    const script = await probe();
    const result = await launch(script, ['3', '--data', 'a b'], withoutTunables(process.env));
    expect(result.code).toBe(3);
    const seen = JSON.parse(result.stdout);
    expect(seen.argv).toEqual(['--data', 'a b']);
    expect(seen.main).toBe(script);
    expect(seen.tunables).toBe(process.platform === 'linux' ? MALLOC_TUNABLES : null);
    expect(seen.execArgv).toEqual(expect.arrayContaining([...HEAP_FLAGS]));
  });

  it("runs in its own process when the tunables and heap flags are already set, and ends with the command's signal", async () => {
    const script = await probe();
    const own = await launch(script, ['0'], { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.arena_max=1' }, ['--initial-old-space-size=64']);
    expect(own.code).toBe(0);
    const seen = JSON.parse(own.stdout);
    expect(seen.tunables).toBe('glibc.malloc.arena_max=1');
    expect(seen.execArgv).toContain('--initial-old-space-size=64');
    expect(seen.execArgv).not.toContain(HEAP_FLAGS[0]);
    const killed = await launch(script, ['signal'], withoutTunables(process.env));
    expect(killed.signal).toBe('SIGTERM');
  });
});
