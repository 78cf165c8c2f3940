import type { PartitionKey } from '../model/partition.js';
import type { ReadFunction, WriteFunction } from '../stage/artifact-format.js';
import type { SqlSession } from './sql-session.js';

/** Options of {@link PartitionContext.uploadToStage}. */
export interface UploadOptions {
  /**
   * Writes the value to a local file path yourself (Snowflake DPF's `write_function`), for
   * formats dpf does not know.
   * @example `{ writeFunction: (model, path) => writeFile(path, model.serialize()) }`
   */
  writeFunction?: WriteFunction;
}

/** Options of {@link PartitionContext.downloadFromStage}. */
export interface DownloadOptions<T> {
  /**
   * The stage folder to read from, relative to the stage's root — for example another run's
   * partition (`'train-2024/ATL'`) or a shared folder (`'models'`).
   * @defaultValue this partition's folder in this run
   */
  stagePath?: string;
  /** Reads the file from its local path yourself (Snowflake DPF's `read_function`). */
  readFunction?: ReadFunction<T>;
}

/** Writes a line to the partition's log; `log.warn` and `log.error` mark the line's level. */
export interface PartitionLog {
  (...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

/**
 * What a partition function knows about the partition it runs, and what it can do with the stage.
 *
 * @example
 * ```ts
 * export default async function train(data: DataConnector, context: PartitionContext) {
 *   context.log('training', context.partitionId, 'attempt', context.attempt);
 *   const model = trainModel(await data.toRecords(), { signal: context.signal });
 *   await context.uploadToStage(model, 'model.json');
 * }
 * ```
 */
export interface PartitionContext<Args = unknown> {
  /**
   * The run's `args` (an option of `run()` and `runFromStage()`): JSON parameters for the
   * function, the same in every partition, kept with the run so resumes and reruns get them
   * too. Frozen: a change would leak into the next partition of the worker. Undefined when the
   * run has none.
   * @example `export default (data: DataConnector, context: PartitionContext<{ depth: number }>) => train(data, context.args.depth)`
   */
  readonly args: Args;
  /** The partition's id: the file path relative to the input location, or the key as text. */
  readonly partitionId: string;
  /** The partition's typed key (DataFrame mode); the id in stage mode. */
  readonly partitionKey: PartitionKey;
  readonly runId: string;
  /** 1 on the first attempt, then 2, 3… on retries (and on resumed runs). */
  readonly attempt: number;
  /** Aborted on `run.cancel()`, on the attempt's timeout, and when fail-fast stops the run. */
  readonly signal: AbortSignal;
  /** Writes to the partition's log (console output is captured there too): `details.logs()`, `dpf logs`. */
  readonly log: PartitionLog;
  /**
   * Saves a value as an artifact of this partition, `{runId}/{partition}/{filename}` on the
   * stage. The format follows the extension (`.json`, `.parquet`, `.csv`, `.arrow`, `.txt`, raw
   * bytes) unless a `writeFunction` is given. Artifacts are put in place when the function
   * returns successfully; a failed attempt leaves none.
   */
  uploadToStage(value: unknown, filename: string, options?: UploadOptions): Promise<void>;
  /** Reads an artifact back: by default this partition's, or one under `stagePath`. */
  downloadFromStage<T = unknown>(filename: string, options?: DownloadOptions<T>): Promise<T>;
  /**
   * Runs `fn` with a SQL session on the DPF's `sessionDatabase` (a DuckDB file by default, or
   * PostgreSQL). All sessions of one attempt share one transaction, committed only when the
   * attempt succeeds.
   */
  withSession<T>(fn: (session: SqlSession) => T | Promise<T>): Promise<T>;
}
