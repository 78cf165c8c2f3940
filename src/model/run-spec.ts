import type { JsonValue } from './json-value.js';
import type { StoredHeader } from './stored-json.js';

/**
 * What a run is, as `_dpf/run.json` keeps it: written once, when the run is created, by a
 * create-if-absent that publishes the run. What each driver of the run ran with (module, options,
 * session database) is in its start record in the journal.
 */
export interface RunSpec extends StoredHeader<'run'> {
  runId: string;
  /** Random, made at creation: tells this run from an earlier run of the same id that was overwritten. */
  uid: string;
  input: StageInput | DataFrameInput;
  folderEncoding: FolderEncoding;
  createdAt: string;
}

/** Stage mode's input: the input location (absolute folder or `s3://` prefix) and the glob that chose its files. */
export interface StageInput {
  mode: 'stage';
  location: string;
  filePattern: string;
}

/** DataFrame mode's input: what was partitioned, by which columns (the rows are in `_dpf/input/`). */
export interface DataFrameInput {
  mode: 'dataframe';
  partitionBy: string[];
  source: string;
  rows: number;
  /** The columns the run gives its function (with the partition columns), as the source spells them and in its order; absent: every column. */
  columns?: string[];
}

/** How partition ids are encoded into folder names on one stage (see stage/partition-folder.ts). */
export interface FolderEncoding {
  /** Keep `/` as a folder separator (stage mode: a file's sub-folders are kept). */
  keepSlashes: boolean;
  /** The stage folds case. */
  caseInsensitive: boolean;
}

/**
 * What workers call for each partition: which module and export hold the partition function, and
 * what it is called with. Plain data, sent to every worker, and recorded in every start record —
 * so a restored, resumed or rerun run calls the same function the same way.
 */
export interface ModuleReference {
  /** `file:` URL of the module. */
  url: string;
  /** The export to call; `default` unless the user named another. */
  exportName: string;
  /** Queue runs: the module as workers on other machines find it (see execute/module-identity.ts). */
  shared?: SharedModule;
  /** The run's `args`: the function reads them as `context.args`. */
  args?: JsonValue;
  /** A layer of dpf's on top of the function (the many-model layer): it calls the function, then does its part. */
  layer?: LayerReference;
}

/**
 * A layer that wraps the partition function in every worker: a module of dpf's own (a path
 * relative to dpf's root, without extension, such as `models/training-layer`) whose
 * `wrapPartitionFunction(fn, options)` returns the function workers call, and the layer's options.
 */
export interface LayerReference {
  module: string;
  options: JsonValue;
}

/** A queue run's module: its path relative to the project root (`/`-separated) and its content's SHA-256. */
export interface SharedModule {
  path: string;
  sha256: string;
}

/**
 * The database of `context.withSession`: a DuckDB file the driver serves, PostgreSQL by URL, or
 * none (a stage on S3 has no folder for the default DuckDB file). On the stage a PostgreSQL URL is
 * kept without its password or any other credential (see execute/session-url.ts); the driver's
 * workers get the full URL in memory.
 */
export type SessionTarget =
  /** `inStage`: the default `{stage}/dpf.duckdb`, recorded as `dpf.duckdb` so the stage can move. */
  | { kind: 'duckdb'; path: string; inStage?: true }
  | { kind: 'postgres'; url: string }
  | { kind: 'none' };

/** Execution options with every default filled in, as a run records them. */
export interface ResolvedExecutionOptions {
  maxRetries: number;
  failFast: boolean;
  numCpusPerWorker: number;
  numGpusPerWorker: number;
  useHeadNode: boolean;
  timeoutMs: number | undefined;
  isolation: 'thread' | 'process';
  memoryLimitMb: number | undefined;
  retryBackoffMs: number;
  packSmallArtifacts: boolean;
  maxLogBytes: number;
  availableCpus: number;
  availableGpus: readonly string[];
}
