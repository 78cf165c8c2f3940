import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterEach } from 'vitest';

/** The project's root folder. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/**
 * A fresh temporary folder, removed after the test. It lies inside the project (`tmp/`, ignored by
 * git) so partition modules written there can `import … from 'dpf'`, as a user's modules do.
 */
export async function tempDir(prefix = 'test-'): Promise<string> {
  await mkdir(join(ROOT, 'tmp'), { recursive: true });
  const dir = await mkdtemp(join(ROOT, 'tmp', prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes files (path relative to `dir` → content), creating folders. */
export async function writeFiles(dir: string, files: Record<string, string | Uint8Array>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), content);
  }
}

/**
 * Writes a partition-function module into `dir` and returns its path. `body` is the function's
 * body, with `data` and `context` in scope; `prelude` goes at the module's top level.
 */
export async function writeModule(dir: string, body: string, options: { name?: string; prelude?: string } = {}): Promise<string> {
  const path = join(dir, options.name ?? 'fn.mjs');
  await writeFile(path, `${options.prelude ?? ''}\nexport default async function (data, context) {\n${body}\n}\n`);
  return path;
}

/** Runs SQL in a throw-away DuckDB (to write Parquet/CSV/JSON fixtures, or to compute expected answers). */
export async function duckdb<T = Record<string, unknown>>(sql: string): Promise<T[]> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const reader = await connection.runAndReadAll(sql);
    return reader.getRowObjectsJS() as T[];
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** Every file under a folder, relative to it, sorted. */
export async function listFiles(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries
      .filter((entry) => entry.isFile())
      .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1))
      .sort();
  } catch {
    return [];
  }
}

export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Runs a Node script (ES module text) in a child process with the built package; resolves with its output. */
export function runNodeScript(
  script: string,
  /** `detached`: the script leads a process group of its own (a terminal's job), which `kill('SIGINT', true)` signals whole, as Ctrl-C does. */
  options: { cwd?: string; node?: string; env?: Record<string, string>; onStdout?: (text: string) => void; detached?: boolean } = {},
): { done: Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>; pid: number; kill: (signal?: NodeJS.Signals, group?: boolean) => void } {
  const child = spawn(options.node ?? process.execPath, ['--input-type=module', '-e', script], {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached === true,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    options.onStdout?.(chunk.toString());
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await done;
  });
  return { done, pid: child.pid!, kill: (signal = 'SIGKILL', group = false) => (group ? process.kill(-child.pid!, signal) : child.kill(signal)) };
}

/** Waits until `check` returns true, polling; fails after `timeoutMs`. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The PostgreSQL server the tests use: 127.0.0.1:5432, database `test` (override with DPF_TEST_POSTGRES). */
export const POSTGRES_URL = process.env.DPF_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * Runs SQL on the test PostgreSQL server. A test that needs the server fails with a message that
 * says it is not reachable, rather than passing without it.
 */
export async function postgres<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
  } catch (error) {
    throw new Error(
      `These tests need PostgreSQL at ${POSTGRES_URL}, which is not reachable (${(error as Error).message}). ` +
        'Start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) or set DPF_TEST_POSTGRES.',
    );
  }
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

/** A name unique to this test run, for tables shared on the PostgreSQL server. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
}

/** Runs the `dpf` command (the built CLI) and waits for it. */
export function dpfCommand(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return dpfCommandWith({}, ...args);
}

/** Runs the `dpf` command in a folder and with environment variables of its own (`undefined` removes one). */
export function dpfCommandWith(options: { cwd?: string; env?: Record<string, string | undefined> }, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const env = { ...process.env, ...options.env };
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete env[name];
  const result = spawnSync(process.execPath, [join(ROOT, 'dist/cli/main.js'), ...args], { encoding: 'utf8', env, cwd: options.cwd ?? ROOT, maxBuffer: 64 * 1024 * 1024 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}
