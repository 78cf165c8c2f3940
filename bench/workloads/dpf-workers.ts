import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../harness.js';

/** `dpf worker` processes a benchmark started, as a user would start them on their machines. */
export interface DpfWorkers {
  pids: number[];
  /** SIGTERM to each (a drain), resolving once every one has exited; rejects if one exited by itself before. */
  stop(): Promise<void>;
}

/**
 * Starts `count` real `dpf worker` processes of the built CLI (`node dist/cli/main.js worker
 * --queue URL --queue-name NAME --concurrency N`) in the project's folder, with the CLI's own
 * lock and stalled-check times; resolves once each says it takes jobs (its readiness line on
 * stderr, a barrier); `nodeArgs` go to Node before the script (`--cpu-prof` profiles them). Each drives runs too (a submitted run's drive job goes to one of them),
 * so a run with `useHeadNode: false` runs wholly in these processes.
 */
export async function startDpfWorkers(url: string, name: string, count: number, concurrency: number, nodeArgs: string[] = []): Promise<DpfWorkers> {
  const children: ChildProcess[] = [];
  const started = Array.from({ length: count }, () => {
    const child = spawn(process.execPath, [...nodeArgs, join(ROOT, 'dist', 'cli', 'main.js'), 'worker', '--queue', url, '--queue-name', name, '--concurrency', String(concurrency)], {
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    children.push(child);
    let stderr = '';
    return new Promise<void>((resolve, reject) => {
      child.stderr!.on('data', (chunk: Buffer) => {
        stderr = (stderr + chunk.toString()).slice(-16_384);
        if (stderr.includes('takes jobs from queue')) resolve();
      });
      child.once('exit', (code, signal) => {
        const said = `a dpf worker exited (${signal ?? `code ${code}`}); it said:\n${stderr}`;
        reject(new Error(said));
        if (stopping === undefined) died = new Error(said);
      });
    });
  });
  let stopping: Promise<void> | undefined;
  let died: Error | undefined;
  try {
    await Promise.all(started);
  } catch (error) {
    for (const child of children) child.kill('SIGKILL');
    throw error;
  }
  return {
    pids: children.map((child) => child.pid!),
    stop: () => {
      stopping ??= Promise.all(
        children.map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) return resolve();
              child.once('exit', () => resolve());
              child.kill('SIGTERM');
            }),
        ),
      ).then(() => {
        if (died !== undefined) throw died;
      });
      return stopping;
    },
  };
}
