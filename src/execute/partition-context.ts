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

/**
 * Options of {@link PartitionContext.downloadFromStage}: where to read from — by default what
 * this attempt uploaded; a partition of another run by its id (`runId`, `partitionId`); or a
 * folder of the stage (`stagePath`). `stagePath` cannot be given with `runId` or `partitionId`
 * (an InvalidOptionError names them).
 *
 * @example
 * ```ts
 * // This partition's model, trained by the run 'train' over the same partitions.
 * const model = await context.downloadFromStage('model.json', { runId: 'train' });
 * // Another partition's, by its id as that run names it — however its folder is encoded.
 * const other = await context.downloadFromStage('model.json', { runId: 'train', partitionId: 'A|B' });
 * // A shared file, by its folder.
 * const lookup = await context.downloadFromStage('airports.json', { stagePath: 'shared' });
 * ```
 */
export interface DownloadOptions<T> {
  /**
   * The run to read a partition's artifact from (its runId, on this DPF's stage). The partition
   * must be DONE there: its artifacts are the ones its DONE record names. Errors: a run the
   * stage does not have is a RunNotFoundError; a partition it does not have, one not DONE, or
   * one without that artifact is an ArtifactNotFoundError saying which (and what it has).
   *
   * It cannot be the calling run itself — what another partition of a running run holds
   * depends on the order partitions run (an InvalidOptionError says so); leave out `runId` and
   * `partitionId` to read what this attempt uploaded.
   * @example `{ runId: 'train-2024' }`: this partition's artifact in the run `train-2024`
   */
  runId?: string;
  /**
   * The partition of `runId` to read from, by its id as that run names it (its
   * `getPartitionDetails()` key; `context.partitionId` there): a DataFrame key as text (a
   * composite key as `region=EU/store=Berlin`), or a stage-mode file path relative to the input
   * location. Its folder is looked up in that run's partition list, so keys with `|`, `/`, `%`
   * or any Unicode need no encoding by hand. Needs `runId` (see there why).
   * @defaultValue this partition's own id (the many-model case: "this partition's model")
   */
  partitionId?: string;
  /**
   * A folder of the stage to read from, relative to its root: a shared folder (`'models/v1'`)
   * or another run's partition folder, `{runId}/{folder}` — the partition's
   * `details.stagePath`. A run's folder followed by a partition id that is no partition's
   * folder (`'train/A|B'`, whose folder is `A%7CB`; `'train/region=EU/store=Berlin'`) names
   * that partition too. A folder always names its own partition, so the rare id that is also
   * another partition's folder (an id `A%7CB` next to `A|B`) is read by `{ runId,
   * partitionId }` only — the way to prefer for partitions of runs. A folder of the calling run
   * itself is refused, as its partitions are by id (see `runId`).
   * @defaultValue none: what this attempt uploaded
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
  /**
   * Reads an artifact back: by default what this attempt uploaded; with `{ runId, partitionId }`
   * a partition's artifact in another run (a model its training run saved); with `stagePath`
   * a file under a folder of the stage. See {@link DownloadOptions}.
   */
  downloadFromStage<T = unknown>(filename: string, options?: DownloadOptions<T>): Promise<T>;
  /**
   * Runs `fn` with a SQL session on the DPF's `sessionDatabase` (a DuckDB file by default, or
   * PostgreSQL). All sessions of one attempt share one transaction, committed only when the
   * attempt succeeds.
   */
  withSession<T>(fn: (session: SqlSession) => T | Promise<T>): Promise<T>;
}
