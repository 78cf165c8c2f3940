/**
 * Every error dpf raises is a {@link DPFError}; the subclasses say what went wrong in a way code
 * can act on (`instanceof`), and their messages say what to do about it.
 */

/** The base class of every error dpf raises. */
export class DPFError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** An option passed to dpf has the wrong name, type or value. Raised before any work starts. */
export class InvalidOptionError extends DPFError {
  /** The option's path, e.g. `executionOptions.numCpusPerWorker`. */
  readonly option: string;
  constructor(option: string, message: string) {
    super(`${option}: ${message}`);
    this.option = option;
  }
}

/** `dpf export` refuses its output folder: one that is not empty (without --force), or a path that would lead outside it. */
export class ExportError extends DPFError {}

/** The partition function's module cannot be found, imported, or lacks the named export. */
export class ModuleLoadError extends DPFError {}

/**
 * A queue worker's copy of a run's partition module is not the one the run was submitted with
 * (or it has none): it refuses the run's partitions rather than run other code.
 */
export class ModuleMismatchError extends DPFError {}

/** The queue (Redis, through BullMQ) cannot be reached, or refuses what dpf asks of it. */
export class QueueError extends DPFError {}

/** The input location of a stage-mode run is missing, not a folder, or holds no file for the run. */
export class InputLocationError extends DPFError {}

/** A DataFrame-mode source cannot be read: SQL that does not parse, a missing table, an unreachable database. */
export class SourceError extends DPFError {}

/** A run with this runId already exists on the stage and `onExistingArtifacts` is `'error'`. */
export class RunExistsError extends DPFError {}

/** A run with this runId is being executed by a live driver right now. */
export class RunInProgressError extends DPFError {}

/** No run with this runId exists on the stage. */
export class RunNotFoundError extends DPFError {}

/**
 * `rerunFailed` found nothing to rerun: every partition of the run is DONE (or it has none), or
 * the run never started, so it does not say how its partitions are run.
 */
export class NothingToRerunError extends DPFError {}

/**
 * The driver of a run stopped reporting (it was killed or its machine went away) before the run
 * finished. Resume it with `onExistingArtifacts: 'resume'`.
 */
export class RunAbandonedError extends DPFError {}

/**
 * Reading or writing the stage failed (a full disk, a permission, the object store refusing or
 * unreachable). `path` names the object; the message says the cause and what to do.
 */
export class StageError extends DPFError {
  /** The stage object the operation was on, as `{stage}/{path}`. */
  readonly path: string;
  constructor(path: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.path = path;
  }
}

/**
 * A local file dpf writes outside the stage could not be written: a temporary copy (in
 * `os.tmpdir()`, which `TMPDIR` sets) or the target of a download. `path` names the file; the
 * message says the cause (a full disk, a permission) and what to do.
 */
export class LocalFileError extends DPFError {
  /** The local file. */
  readonly path: string;
  constructor(path: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.path = path;
  }
}

/**
 * A file of a run's state or one of its artifacts is missing, truncated or unreadable: the stage
 * was damaged (a file deleted or cut short by hand, a disk fault). The message names the file and
 * what to do; dpf never answers from damaged state.
 */
export class StageDamagedError extends DPFError {
  /** The damaged object, as `{stage}/{path}`. */
  readonly path: string;
  constructor(path: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.path = path;
  }
}

/**
 * The database of `context.withSession` cannot be reached, or refused what dpf keeps there for
 * exactly-once rows (its ledger tables). Raised before a run starts or resumes.
 */
export class SessionDatabaseError extends DPFError {}

/**
 * A file on the stage was written in a format this version of dpf does not know (by a newer or a
 * much older dpf). The message names the file and the version it found.
 */
export class StageFormatError extends DPFError {
  /** The file, as `{stage}/{path}`. */
  readonly path: string;
  constructor(path: string, message: string) {
    super(message);
    this.path = path;
  }
}

/**
 * The driver of a run lost its ownership of the run to another driver (it was paused or cut off
 * past its lease, and a `resume` took the run over): it stopped and committed nothing more.
 */
export class LeaseLostError extends DPFError {}

/**
 * @internal A queue run's driver stopped driving without ending the run, for another `dpf worker`
 * to take it on at once (its worker is leaving). Its lease is released with this error's message.
 */
export class DriverHandedOverError extends DPFError {
  constructor(note: string) {
    super(note);
  }
}


/** A filename given to `uploadToStage` / `downloadFromStage` is not a flat name inside the partition's folder. */
export class ArtifactNameError extends DPFError {}

/**
 * `uploadToStage` or `withSession` was called after its attempt ended: the function had returned
 * (the call came from a timer or callback that outlived it), or it timed out or was cancelled.
 */
export class AttemptEndedError extends DPFError {}

/**
 * An `uploadToStage` or `withSession` the function did not await was still running when it
 * returned, and then failed: the attempt fails with this error (its `cause` is the call's error).
 */
export class UnawaitedCallError extends DPFError {}

/** An artifact or stage file that was asked for does not exist. */
export class ArtifactNotFoundError extends DPFError {}

/** A value cannot be written or read in the format its file extension names. */
export class SerializationError extends DPFError {}

/** A partition's file cannot be read as a table (unknown extension or unreadable content). */
export class DataFormatError extends DPFError {}

/**
 * `data.toFeatures()` cannot make numbers of a partition's columns: `reason` says why —
 * `'missing'`: columns asked for that the partition lacks (the message lists the ones it has);
 * `'not-numeric'`: columns that are dates, strings or other non-numbers (the message gives their
 * Arrow types and how to convert them); `'null'`: a null or NaN at `row` (0-based, in the
 * partition) with `nulls: 'error'`. `columns` names the columns. Not retried: another attempt
 * reads the same data.
 */
export class FeatureColumnError extends DataFormatError {
  readonly reason: 'missing' | 'not-numeric' | 'null';
  readonly columns: readonly string[];
  /** With `reason: 'null'`: the partition's row (0-based) where the first null is. */
  readonly row: number | undefined;
  /** Not retried: another attempt reads the same columns and values. */
  readonly retryable = false;
  constructor(reason: 'missing' | 'not-numeric' | 'null', columns: readonly string[], message: string, row?: number) {
    super(message);
    this.reason = reason;
    this.columns = columns;
    this.row = row;
  }
}

/** Options for {@link PartitionError}. */
export interface PartitionErrorOptions extends ErrorOptions {
  /**
   * Whether dpf may retry the partition after this error. Use `false` for failures another
   * attempt cannot fix (bad data, a missing column), so the run does not spend retries on them.
   * @defaultValue true
   */
  retryable?: boolean;
}

/**
 * An error a partition function throws to fail its partition. With `retryable: false` the
 * partition is marked FAILED at once, without using the run's retries (BullMQ's
 * `UnrecoverableError`).
 *
 * @example
 * ```ts
 * if (table.numRows === 0) throw new PartitionError('no rows for this store', { retryable: false });
 * ```
 */
export class PartitionError extends DPFError {
  readonly retryable: boolean;
  constructor(message: string, options: PartitionErrorOptions = {}) {
    super(message, options);
    this.retryable = options.retryable ?? true;
  }
}

/** An attempt of a partition ran longer than `executionOptions.timeoutMs`. */
export class PartitionTimeoutError extends DPFError {}

/** A partition was stopped because its run was cancelled, or failed fast after another partition failed. */
export class PartitionCancelledError extends DPFError {}

/**
 * `toArrow()`, `toRecords()` or `toColumns()` was asked for a partition bigger than the worker's
 * memory (`executionOptions.memoryLimitMb`, its JavaScript heap, or the machine's): the read is
 * refused before it is made, so the attempt fails and the worker goes on. The partition is FAILED
 * at once, without using the run's retries (the outcome cannot change). Read such a partition
 * with `data.batches()`, or raise the limit.
 */
export class PartitionTooLargeError extends DPFError {
  /** Not retried: another attempt reads the same data under the same limit, and is refused again. */
  readonly retryable = false;
}

/** The worker running a partition died (crash, `process.exit`, out of memory, killed). */
export class WorkerCrashError extends DPFError {}

/** What a partition's failure looked like, as stored on the stage and shown in its details. */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  /** False when the error said it must not be retried (a {@link PartitionError} with `retryable: false`, a {@link PartitionTooLargeError}). */
  retryable?: boolean;
}

/** Turns anything thrown into plain, serialisable data. */
export function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    const serialized: SerializedError = { name: error.name, message: error.message };
    if (error.stack !== undefined) serialized.stack = error.stack;
    const retryable = (error as { retryable?: unknown }).retryable;
    if (retryable === false) serialized.retryable = false;
    return serialized;
  }
  return { name: 'Error', message: typeof error === 'string' ? error : safeString(error) };
}

function safeString(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * Plain records whose field holds values no one Arrow type can hold (a string in one row, a
 * number in another): dpf does not guess. `field` is the field's path (`tags[]` for a list's
 * elements, `address.city` for a struct's field), `row` the index of the record where the second
 * kind was seen, `kinds` the two kinds.
 */
export class RecordsTypeError extends SerializationError {
  readonly field: string;
  readonly row: number;
  readonly kinds: readonly [string, string];
  constructor(field: string, row: number, kinds: readonly [string, string], message: string) {
    super(message);
    this.field = field;
    this.row = row;
    this.kinds = kinds;
  }
}

/**
 * The many-model layer has no model where one is needed: an inference partition whose key no
 * training run has a DONE model for (with `onMissingModel: 'error'`), or `getModel` of a partition
 * that did not train. Not retried: another attempt finds the same models.
 */
export class ModelNotFoundError extends DPFError {
  readonly retryable = false;
}

/**
 * A model cannot be saved or loaded by its `ModelSerde`: a training function that returned
 * nothing, a value the serde cannot write (bytes expected), a serde workers cannot find. Not
 * retried: another attempt returns the same.
 */
export class ModelSerdeError extends DPFError {
  readonly retryable = false;
}

/** The dashboard would be reachable from other machines without a token: refused before it listens. */
export class DashboardExposedError extends DPFError {}
