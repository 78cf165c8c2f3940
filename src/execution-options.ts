import { availableParallelism } from 'node:os';
import { InvalidOptionError } from './errors.js';
import type { ResolvedExecutionOptions } from './model/run-spec.js';

export type { ResolvedExecutionOptions };
import {
  checkBoolean,
  checkInteger,
  checkOneOf,
  checkOptionsObject,
  checkPositiveNumber,
} from './validate.js';

/**
 * How partitions are executed. Defaults follow Snowflake DPF's `ExecutionOptions` where it has one.
 *
 * @example
 * ```ts
 * await dpf.runFromStage({
 *   stageLocation: './input', runId: 'convert',
 *   executionOptions: { maxRetries: 2, timeoutMs: 60_000, isolation: 'process', memoryLimitMb: 2048 },
 * });
 * ```
 */
export interface ExecutionOptions {
  /**
   * How many times a failed partition is tried again (so at most `maxRetries + 1` attempts). A
   * {@link PartitionError} thrown with `retryable: false` is not retried, nor a
   * {@link PartitionTooLargeError} (the same read under the same limit is refused again).
   * @defaultValue 1
   */
  maxRetries?: number;
  /**
   * Stop at the first partition that fails for good: pending partitions become CANCELLED and
   * running ones are aborted through `context.signal`.
   * @defaultValue false
   */
  failFast?: boolean;
  /**
   * CPUs each worker may use. The local pool runs `floor(availableCpus / numCpusPerWorker)`
   * workers (at least one); a fraction such as `0.5` oversubscribes, for I/O-bound functions.
   * @defaultValue 1
   */
  numCpusPerWorker?: number;
  /**
   * GPUs each worker gets, handed out as disjoint `CUDA_VISIBLE_DEVICES` slices. Because CUDA reads
   * that variable from the real process environment, GPU workers run with `isolation: 'process'`.
   * @defaultValue 0
   */
  numGpusPerWorker?: number;
  /**
   * Whether the machine that starts the run also executes partitions. The local executor always
   * runs on this machine; the option matters for the queue executor.
   * @defaultValue true
   */
  useHeadNode?: boolean;
  /**
   * Longest an attempt of one partition may run, in milliseconds. At the limit its
   * `context.signal` is aborted and the attempt fails with a {@link PartitionTimeoutError}; a
   * function that blocks its thread past the limit has its worker terminated.
   * @defaultValue no limit
   */
  timeoutMs?: number;
  /**
   * `'thread'` runs partitions in worker threads (fast start, shared memory). `'process'` runs them
   * in child processes, so a crash, `process.exit` or out-of-memory costs one attempt, not the run.
   * @defaultValue `'thread'` (`'process'` when `numGpusPerWorker` is set)
   */
  isolation?: 'thread' | 'process';
  /**
   * JavaScript heap limit of each worker in MiB (V8's old space). A worker that exceeds it dies
   * and its partition ends with INTERNAL_ERROR. Also caps the worker's DuckDB memory (native,
   * beside the heap; its CSV reader's buffers are sized to fit: see the README's "Small memory
   * limits"), and what `toArrow()`, `toRecords()` and `toColumns()` may hold of a partition: a
   * bigger partition's whole read is refused with a `PartitionTooLargeError` (read it with
   * `batches()`).
   * @defaultValue V8's default
   */
  memoryLimitMb?: number;
  /**
   * Delay before the first retry of a failed partition, in milliseconds; each further retry of the
   * same partition waits twice as long (at most 30 s).
   * @defaultValue 1000
   */
  retryBackoffMs?: number;
  /**
   * Keep artifacts of up to 64 KiB written by the default formats in per-worker pack files
   * (located by the run's journal) instead of one file each — much cheaper for many small
   * partitions. The artifacts API, `downloadFromStage`, `run.query` and the CLI read them the
   * same way; set `false` to have every artifact as a file in its partition's folder.
   * @defaultValue true
   */
  packSmallArtifacts?: boolean;
  /**
   * The most log one attempt keeps, in bytes (its timestamped lines: `context.log`, `console.*`,
   * `process.stdout` and `process.stderr`). Output past it is dropped, and the log ends with a
   * line saying how much was. A worker holds at most 256 KiB of an attempt's log in memory and
   * spools the rest to a local file, so a partition that prints without end cannot exhaust it.
   * @defaultValue 16 MiB (16,777,216)
   */
  maxLogBytes?: number;
  /**
   * CPUs this machine offers to the run.
   * @defaultValue `os.availableParallelism()`
   */
  availableCpus?: number;
  /**
   * GPUs this machine offers: a count (devices `0..n-1`) or the device ids.
   * @defaultValue the ids in `CUDA_VISIBLE_DEVICES`, else none
   */
  availableGpus?: number | readonly string[];
}

/** See {@link ExecutionOptions.maxLogBytes}. */
const DEFAULT_MAX_LOG_BYTES = 16 * 1024 * 1024;

const EXECUTION_OPTION_KEYS = [
  'maxRetries',
  'failFast',
  'numCpusPerWorker',
  'numGpusPerWorker',
  'useHeadNode',
  'timeoutMs',
  'isolation',
  'memoryLimitMb',
  'retryBackoffMs',
  'packSmallArtifacts',
  'maxLogBytes',
  'availableCpus',
  'availableGpus',
] as const;

/** Checks user execution options and fills in the defaults. Throws {@link InvalidOptionError}. */
export function resolveExecutionOptions(input: unknown): ResolvedExecutionOptions {
  const name = 'executionOptions';
  const options = input === undefined ? {} : checkOptionsObject(input, name, EXECUTION_OPTION_KEYS);
  const optional = <T>(key: string, check: (value: unknown, option: string) => T): T | undefined =>
    options[key] === undefined ? undefined : check(options[key], `${name}.${key}`);

  const numGpusPerWorker = optional('numGpusPerWorker', (v, n) => checkInteger(v, n, 0)) ?? 0;
  const requestedIsolation = optional('isolation', (v, n) => checkOneOf(v, n, ['thread', 'process'] as const));
  if (numGpusPerWorker > 0 && requestedIsolation === 'thread') {
    throw new InvalidOptionError(
      `${name}.isolation`,
      "numGpusPerWorker needs isolation: 'process', because CUDA reads CUDA_VISIBLE_DEVICES from a process's own " +
        'environment, which worker threads share; remove isolation or set it to \'process\'',
    );
  }
  const availableCpus = optional('availableCpus', (v, n) => checkInteger(v, n, 1)) ?? availableParallelism();
  const availableGpus = resolveGpus(optional('availableGpus', checkGpus));
  const numCpusPerWorker = optional('numCpusPerWorker', checkPositiveNumber) ?? 1;
  if (numGpusPerWorker > availableGpus.length) {
    throw new InvalidOptionError(
      `${name}.numGpusPerWorker`,
      `asks for ${numGpusPerWorker} GPU(s) per worker but this machine offers ${availableGpus.length}` +
        (availableGpus.length === 0 ? ' (set CUDA_VISIBLE_DEVICES or executionOptions.availableGpus)' : ''),
    );
  }
  return {
    maxRetries: optional('maxRetries', (v, n) => checkInteger(v, n, 0)) ?? 1,
    failFast: optional('failFast', checkBoolean) ?? false,
    numCpusPerWorker,
    numGpusPerWorker,
    useHeadNode: optional('useHeadNode', checkBoolean) ?? true,
    timeoutMs: optional('timeoutMs', (v, n) => checkInteger(v, n, 1)),
    isolation: requestedIsolation ?? (numGpusPerWorker > 0 ? 'process' : 'thread'),
    memoryLimitMb: optional('memoryLimitMb', (v, n) => checkInteger(v, n, 16)),
    retryBackoffMs: optional('retryBackoffMs', (v, n) => checkInteger(v, n, 0)) ?? 1000,
    packSmallArtifacts: optional('packSmallArtifacts', checkBoolean) ?? true,
    maxLogBytes: optional('maxLogBytes', (v, n) => checkInteger(v, n, 1024)) ?? DEFAULT_MAX_LOG_BYTES,
    availableCpus,
    availableGpus,
  };
}

function checkGpus(value: unknown, option: string): number | readonly string[] {
  if (typeof value === 'number') return checkInteger(value, option, 0);
  if (Array.isArray(value) && value.every((id) => typeof id === 'string' && id.trim() !== '')) {
    return value as string[];
  }
  throw new InvalidOptionError(option, 'expected a number of GPUs or a list of device ids such as ["0", "1"]');
}

function resolveGpus(configured: number | readonly string[] | undefined): readonly string[] {
  if (typeof configured === 'number') return Array.from({ length: configured }, (_, i) => String(i));
  if (configured !== undefined) return configured;
  const visible = process.env.CUDA_VISIBLE_DEVICES;
  if (visible === undefined || visible.trim() === '' || visible.trim() === '-1') return [];
  return visible.split(',').map((id) => id.trim()).filter((id) => id !== '');
}

/** The longest wait before a retry, however many retries came before. */
const MAX_RETRY_DELAY_MS = 30_000;

/**
 * How long a failed partition waits before retry number `retry` (1 for the first):
 * `retryBackoffMs`, doubling for each further retry, at most 30 s.
 */
export function retryDelayMs(options: ResolvedExecutionOptions, retry: number): number {
  return Math.min(MAX_RETRY_DELAY_MS, options.retryBackoffMs * 2 ** (retry - 1));
}

/** How many workers the local pool runs for these options. */
export function localWorkerCount(options: ResolvedExecutionOptions): number {
  const byCpu = Math.max(1, Math.floor(options.availableCpus / options.numCpusPerWorker));
  if (options.numGpusPerWorker === 0) return byCpu;
  return Math.min(byCpu, Math.floor(options.availableGpus.length / options.numGpusPerWorker));
}

/** The `CUDA_VISIBLE_DEVICES` value of worker `slot`: a disjoint slice of the available GPUs. */
export function gpuSliceFor(options: ResolvedExecutionOptions, slot: number): string | undefined {
  if (options.numGpusPerWorker === 0) return undefined;
  const start = slot * options.numGpusPerWorker;
  return options.availableGpus.slice(start, start + options.numGpusPerWorker).join(',');
}
