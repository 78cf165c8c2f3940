import { type ChildProcess, fork } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import type { DuckDBSettings } from '../data/duckdb-settings.js';
import type { DriverMessage, EscapedErrorMessage, WorkerMessage } from './protocol.js';

/** How a worker ended when nobody asked it to: what the partition it ran is told. */
export interface WorkerExit {
  code: number | null;
  signal: string | null;
  /** The worker ran out of its heap (`memoryLimitMb`). */
  outOfMemory: boolean;
  /** An error the runtime reported about the worker, if any. */
  message: string | undefined;
  /** The last lines a child process wrote to stderr (what a native crash or V8 prints as it dies). */
  lastWords: string;
}

/** Options of one worker. */
export interface WorkerSpawnOptions {
  isolation: 'thread' | 'process';
  memoryLimitMb: number | undefined;
  /**
   * The driver's `process.env` when the run started: the worker's environment (a pooled worker
   * serves only runs whose driver environment is this one).
   */
  environment: Record<string, string>;
  /** Extra environment variables (`CUDA_VISIBLE_DEVICES`); process isolation only. */
  env: Record<string, string>;
  /** The limits the worker's DuckDB is created with (a pooled worker keeps its DuckDB). */
  duckdb: DuckDBSettings;
}

const WORKER_ENTRY = new URL('./worker-main.js', import.meta.url);
const STDERR_TAIL_BYTES = 2048;

/**
 * One worker of the local pool — a worker thread or a child process — behind one small
 * interface: send a message, receive messages, learn how it exited, terminate it.
 */
export class WorkerHandle {
  private readonly thread: Worker | undefined;
  private readonly child: ChildProcess | undefined;
  private exitListener: ((exit: WorkerExit) => void) | undefined;
  private messageListener: ((message: WorkerMessage) => void) | undefined;
  private lastError: Error | undefined;
  private exited = false;
  private stderrTail = '';
  private escapedErrors = 0;

  constructor(readonly options: WorkerSpawnOptions) {
    const onMessage = (message: WorkerMessage): void => {
      if (message.type === 'escaped-error') this.reportEscaped(message);
      else this.messageListener?.(message);
    };
    if (options.isolation === 'thread') {
      this.thread = new Worker(WORKER_ENTRY, {
        env: options.environment,
        execArgv: inheritedExecArgv(),
        ...(options.memoryLimitMb !== undefined ? { resourceLimits: { maxOldGenerationSizeMb: options.memoryLimitMb } } : {}),
      });
      this.thread.on('message', onMessage);
      this.thread.on('error', (error) => {
        this.lastError = error;
      });
      this.thread.on('exit', (code) => this.reportExit(code, null));
    } else {
      this.child = fork(WORKER_ENTRY, [], {
        serialization: 'advanced',
        stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
        env: { ...options.environment, ...options.env },
        execArgv: [...inheritedExecArgv(), ...(options.memoryLimitMb !== undefined ? [`--max-old-space-size=${options.memoryLimitMb}`] : [])],
      });
      this.child.on('message', (message) => onMessage(message as WorkerMessage));
      // Output outside partitions still reaches the driver's stderr; the tail is kept for crash reports.
      this.child.stderr!.on('data', (chunk: Buffer) => {
        process.stderr.write(chunk);
        this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL_BYTES);
      });
      this.child.on('error', (error) => {
        this.lastError = error;
      });
      // 'close', not 'exit': by then every message the child sent before it died has been delivered,
      // so the driver never takes a task it reported as the one running when it died.
      this.child.on('close', (code, signal) => this.reportExit(code, signal));
    }
  }

  /** Whether the worker is still running. */
  get alive(): boolean {
    return !this.exited;
  }

  /** Whether it may serve another run: code of an attempt that ended still runs in it when errors escape from it. */
  get reusable(): boolean {
    return !this.exited && this.escapedErrors === 0;
  }

  /** Gives the worker to a new owner: its messages and its exit go there from now on. */
  attach(onMessage: ((message: WorkerMessage) => void) | undefined, onExit: ((exit: WorkerExit) => void) | undefined): void {
    this.messageListener = onMessage;
    this.exitListener = onExit;
  }

  /** Whether the worker keeps the process alive (an idle pooled worker must not). */
  keepAlive(keep: boolean): void {
    if (this.thread !== undefined) {
      if (keep) this.thread.ref();
      else this.thread.unref();
    }
  }

  send(message: DriverMessage): void {
    if (this.exited) return;
    if (this.thread !== undefined) this.thread.postMessage(message);
    else if (this.child?.connected) this.child.send(message);
  }

  /** Stops the worker at once, whatever it is doing. */
  async terminate(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => {
      if (this.thread !== undefined) this.thread.once('exit', () => resolve());
      else this.child!.once('exit', () => resolve());
    });
    if (this.thread !== undefined) await this.thread.terminate();
    else this.child!.kill('SIGKILL');
    await exited;
    this.child?.stderr?.destroy();
  }

  /** An error escaped partition code no running attempt could be failed for (escaped-errors.ts): it goes to the driver's stderr. */
  private reportEscaped(message: EscapedErrorMessage): void {
    this.escapedErrors++;
    const { partition, error } = message;
    const what = partition === undefined
      ? 'an error escaped code of no partition in a worker; it fails no partition'
      : `partition "${partition.id}" (run ${partition.runId}, attempt ${partition.attempt}) raised an error after its attempt had ended; its outcome stands`;
    process.stderr.write(`dpf: ${what}:\n${error.stack ?? `${error.name}: ${error.message}`}\n`);
  }

  private reportExit(code: number | null, signal: string | null): void {
    this.exited = true;
    const message = this.lastError?.message;
    const outOfMemory =
      (this.lastError as NodeJS.ErrnoException | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY' ||
      (this.child !== undefined && (signal === 'SIGABRT' || code === 134));
    const lastWords = this.stderrTail.trim().split('\n').slice(-5).join('\n');
    this.exitListener?.({ code, signal, outOfMemory, message, lastWords });
  }
}

/**
 * The driver's Node options that workers inherit (loaders such as tsx, `--conditions`, source
 * maps), without those that describe the driver's own entry (`--input-type`, `-e`) or its heap.
 */
function inheritedExecArgv(): string[] {
  const skipped = /^(--input-type|--eval|-e|--print|-p|--max-old-space-size)(=|$)/;
  const kept: string[] = [];
  for (let i = 0; i < process.execArgv.length; i++) {
    const arg = process.execArgv[i]!;
    if (!skipped.test(arg)) kept.push(arg);
    else if (!arg.includes('=') && ['--input-type', '--eval', '-e', '--print', '-p'].includes(arg)) i++;
  }
  return kept;
}
