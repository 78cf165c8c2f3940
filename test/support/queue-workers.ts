import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { ROOT } from '../helpers.js';

/** A `dpf worker` process the test started. */
export interface WorkerProcess {
  pid: number;
  /** Everything it wrote to stderr so far (what it says it does). */
  readonly stderr: string;
  /** Resolves when it has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Signals it; SIGKILL by default. `group`: its whole process group (its child workers too), as a machine going away does. */
  kill(signal?: NodeJS.Signals, group?: boolean): void;
  /** Resolves once its stderr has said `text` (a barrier on what the worker reports). */
  said(text: string): Promise<void>;
}

const started: WorkerProcess[] = [];
afterEach(async () => {
  for (const worker of started.splice(0)) {
    worker.kill('SIGKILL', true);
    await worker.exited;
  }
});

/**
 * Starts a real `dpf worker` (the built CLI) on the queue at `url`, with short lock and stalled-check
 * times so that a killed worker is found within a couple of seconds; resolves once it takes jobs.
 *
 * `readOnly`: a folder (it must exist) this worker alone sees read-only, as a machine that mounted
 * the shared folder read-only does — a read-only bind mount in a mount namespace of its own
 * (`unshare`, which needs root, as CI runs).
 */
export async function startWorker(url: string, options: { concurrency?: number; isolation?: 'thread' | 'process'; project?: string; drive?: boolean; name?: string; env?: Record<string, string>; readOnly?: string } = {}): Promise<WorkerProcess> {
  const args = [join(ROOT, 'dist/cli/main.js'), 'worker', '--queue', url, '--concurrency', String(options.concurrency ?? 1), '--lock-ms', '2000', '--stalled-check-ms', '1000'];
  if (options.isolation !== undefined) args.push('--isolation', options.isolation);
  if (options.project !== undefined) args.push('--project', options.project);
  if (options.name !== undefined) args.push('--queue-name', options.name);
  if (options.drive === false) args.push('--no-drive');
  // unshare and sh exec what follows them: the process started is the worker itself (its pid).
  const [command, ...commandArgs] =
    options.readOnly === undefined
      ? [process.execPath, ...args]
      : ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind -o ro "$1" "$1" && shift && exec "$@"', 'sh', options.readOnly, process.execPath, ...args];
  const child = spawn(command!, commandArgs, { cwd: options.project ?? ROOT, env: { ...process.env, ...options.env }, stdio: ['ignore', 'inherit', 'pipe'], detached: true });
  let stderr = '';
  const waiters: Array<{ text: string; resolve: () => void }> = [];
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    for (const waiter of [...waiters]) {
      if (!stderr.includes(waiter.text)) continue;
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const worker: WorkerProcess = {
    pid: child.pid!,
    get stderr() {
      return stderr;
    },
    exited,
    kill: (signal = 'SIGKILL', group = false) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        if (group) process.kill(-child.pid!, signal);
        else child.kill(signal);
      } catch {
        // gone already
      }
    },
    said: (text) =>
      stderr.includes(text)
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            waiters.push({ text, resolve });
            void exited.then(({ code, signal }) => reject(new Error(`dpf worker exited (${signal ?? code}) before it said "${text}"; it said:\n${stderr}`)));
          }),
  };
  started.push(worker);
  await worker.said('takes jobs from queue');
  return worker;
}
