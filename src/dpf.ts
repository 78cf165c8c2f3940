import { type ExecutionOptions, resolveExecutionOptions } from './execution-options.js';
import { InvalidOptionError } from './errors.js';
import { loadPartitionFunction, type PartitionFunction, type PartitionModule, resolveModuleReference } from './execute/partition-module.js';
import { existsSync } from 'node:fs';
import { checkSessionDatabase } from './execute/open-session-ledger.js';
import { join, resolve } from 'node:path';
import { prewarmWorkers } from './execute/local-pool.js';
import { checkQueueOption } from './execute/queue/queue-connection.js';
import { shareModule } from './execute/module-identity.js';
import type { JsonValue } from './model/json-value.js';
import type { DataFrameInput, LayerReference, ModuleReference, RunSpec, SessionTarget } from './model/run-spec.js';
import { checkRunArgs } from './run-args.js';
import { RUN_ID } from './model/run-id.js';
import { readInputManifest } from './data/input-segments.js';
import { checkSource, type DataFrameSource, describeSource } from './plan/dataframe-source.js';
import { choosePartitions } from './plan/partition.js';
import { planStagePartitions } from './plan/stage-partitions.js';
import type { DPFRun } from './run/dpf-run.js';
import { RunFollower } from './run/run-follower.js';
import { readRunSpec } from './run/run-spec.js';
import { checkResumeMatches, checkRunCanStart, type OnExistingArtifacts, type RunRequest, startRun } from './run/start-run.js';
import { openStage, stageLocation } from './stage/open-stage.js';
import { RunLayout } from './stage/run-layout.js';
import { isS3Location } from './stage/s3-location.js';
import type { Stage } from './stage/stage.js';
import { checkOneOf, checkOptionsObject, checkString } from './validate.js';

/** Options of {@link DPF}. */
export interface DPFOptions {
  /**
   * Where runs keep their artifacts, logs and state: a local folder (created if missing), a folder
   * on a file system every worker machine mounts, or an S3 prefix `s3://bucket/prefix` (AWS or any
   * S3-compatible store, configured by the standard AWS environment variables and files).
   */
  stage: string | URL;
  /**
   * The database `context.withSession` connects to: a DuckDB database file, or a PostgreSQL URL
   * (`postgres://user@host:5432/db`). The run records the URL without its password; a process that
   * resumes the run passes it again (or libpq's `PGPASSWORD`/`PGPASSFILE` supply it).
   * @defaultValue `{stage}/dpf.duckdb` for a local stage; none for a stage on S3
   */
  sessionDatabase?: string;
  /**
   * Scale out: run the partitions on `dpf worker` processes on any number of machines, through a
   * BullMQ queue in this Redis (`'redis://host:6379'`, or `{ url, name }` for a queue other than
   * `dpf`). `run()` then returns once the run is submitted; a worker drives it, and any process
   * follows it through the stage (`DPFRun.restoreFrom`). The stage must be one every worker
   * reaches (S3, or a folder mounted at the same path everywhere), the project must be installed
   * on every worker (each checks its copy of the module is the run's), and `sessionDatabase`, if
   * any, must be PostgreSQL. See the README's "Scale out".
   */
  queue?: string | { url: string; name?: string };
}

/** Options of {@link DPF.runFromStage}. */
export interface StageRunOptions {
  /**
   * The folder holding the files to process, or an S3 prefix `s3://bucket/input/`; each matching
   * file is one partition.
   */
  stageLocation: string | URL;
  /**
   * Names the run; its results go to `{stage}/{runId}/`. Letters, digits, `.`, `_` and `-`,
   * starting with a letter or digit.
   */
  runId: string;
  /**
   * Glob of the files to process, relative to `stageLocation`. `*.csv` matches the folder's own
   * files; `**\/*.csv` includes sub-folders.
   * @defaultValue `'*.parquet'`
   */
  filePattern?: string;
  /**
   * Run exactly these files (paths relative to `stageLocation`, as partition ids), ignoring
   * `filePattern` — to rerun the partitions that failed.
   */
  partitionIds?: readonly string[];
  /**
   * What to do when the stage already holds a run with this runId: `'error'` refuses,
   * `'overwrite'` replaces it, `'resume'` keeps its DONE partitions and runs the rest.
   * @defaultValue `'error'`
   */
  onExistingArtifacts?: OnExistingArtifacts;
  /** How partitions are executed. */
  executionOptions?: ExecutionOptions;
  /**
   * Parameters for the function, read as `context.args` in every partition: JSON data (plain
   * objects, arrays, strings, finite numbers, booleans, null), checked before any work — a
   * function, a class instance, a `bigint` or `NaN` is refused naming where it is. Kept with the
   * run: a resume or a rerun of its partitions calls the function with the same args (give them
   * again or leave them out; other args are refused, as they would mix two parameter sets in
   * one run), and `DPFRun.args` reports them.
   * @example `{ args: { maxDepth: 6, features: ['price', 'volume'] } }`
   */
  args?: unknown;
}

/** Options of {@link DPF.run}. */
export interface DataFrameRunOptions {
  /**
   * The column whose distinct values are the partitions (SQL NULL included), or several columns
   * for a composite key.
   */
  partitionBy: string | readonly string[];
  /**
   * Orders the rows within each partition by these columns (`'day'`, `'amount DESC'`). Without
   * it rows come in no particular order, as with Spark's groupBy.
   */
  orderBy?: string | readonly string[];
  /**
   * Only these columns of the source reach the function, with the partition columns (which always
   * do). DuckDB then reads, sorts and hands over only what the function uses — on wide sources the
   * largest saving a run can make (W2 in BENCHMARKS.md). Without it every column is given, as
   * with Snowflake's DPF. A column the source does not have is refused before any work.
   */
  columns?: string | readonly string[];
  /**
   * What to partition: SQL text in DuckDB's dialect (`SELECT * FROM 'sales.parquet'`), a table
   * name in `database`, an apache-arrow `Table`, an array of records, or
   * `{ postgres: 'postgres://…', query: 'SELECT …' }`. It is read once, when the run is planned.
   * A resumed run uses its planned input and does not read the source again (it may be omitted).
   */
  source?: DataFrameSource;
  /** A DuckDB database file that `source` (a table name or SQL) reads from, opened read-only. */
  database?: string;
  /** Names the run; its results go to `{stage}/{runId}/`. */
  runId: string;
  /** Run only these partitions (ids as the run reports them) — to rerun the ones that failed. */
  partitionIds?: readonly string[];
  /**
   * What to do when the stage already holds a run with this runId.
   * @defaultValue `'error'`
   */
  onExistingArtifacts?: OnExistingArtifacts;
  /** How partitions are executed. */
  executionOptions?: ExecutionOptions;
  /**
   * Parameters for the function, read as `context.args` in every partition: JSON data (plain
   * objects, arrays, strings, finite numbers, booleans, null), checked before any work — a
   * function, a class instance, a `bigint` or `NaN` is refused naming where it is. Kept with the
   * run: a resume or a rerun of its partitions calls the function with the same args (give them
   * again or leave them out; other args are refused, as they would mix two parameter sets in
   * one run), and `DPFRun.args` reports them.
   * @example `{ args: { maxDepth: 6, features: ['price', 'volume'] } }`
   */
  args?: unknown;
}

const STAGE_RUN_KEYS = ['stageLocation', 'runId', 'filePattern', 'partitionIds', 'onExistingArtifacts', 'executionOptions', 'args'] as const;
const DATAFRAME_RUN_KEYS = ['partitionBy', 'orderBy', 'columns', 'source', 'database', 'runId', 'partitionIds', 'onExistingArtifacts', 'executionOptions', 'args'] as const;

/**
 * A Distributed Partition Function: one function, run over every partition of a dataset in
 * parallel, keeping what each partition produces on the stage.
 *
 * @example
 * ```ts
 * const dpf = new DPF(new URL('./convert.ts', import.meta.url), { stage: './stage' });
 * const run = await dpf.runFromStage({ stageLocation: './input', filePattern: '**\/*.csv', runId: 'convert' });
 * console.log(await run.wait());   // 'SUCCESS'
 * ```
 */
export class DPF {
  private readonly module: ModuleReference;
  private readonly stageLocation: string;
  private readonly session: SessionTarget;
  private loaded: Promise<PartitionFunction> | undefined;
  /** A run of a layer on top (see {@link DPF.layered}). */
  private layer: LayerReference | undefined;
  private readonly queue: { url: string; name: string } | undefined;
  /** Queue runs: the module with its path in the project and content hash (see prepareQueue). */
  private shared: ModuleReference | undefined;

  /**
   * @param module The module exporting the partition function: a path or `file:` URL of a `.ts`,
   *   `.js` or `.mjs` file (its default export), or `{ module, exportName }` for a named export.
   * @param options Where the runs live.
   */
  constructor(module: PartitionModule, options: DPFOptions) {
    this.module = resolveModuleReference(module);
    const checked = checkOptionsObject(options, 'options', ['stage', 'sessionDatabase', 'queue']);
    this.stageLocation = stageLocation(checked.stage, 'stage');
    this.queue = checked.queue === undefined ? undefined : checkQueueOption(checked.queue);
    this.session = sessionTarget(checked.sessionDatabase, this.stageLocation, this.queue !== undefined);
  }

  /**
   * @internal A DPF whose workers call a layer's wrapper around the function (the many-model
   * layer, models/): the layer is recorded with the module, so resumes and workers elsewhere use it too.
   */
  static layered(module: PartitionModule, options: DPFOptions, layer: LayerReference): DPF {
    const dpf = new DPF(module, options);
    dpf.layer = layer;
    return dpf;
  }

  /** What workers call: the module, with the run's args and the layer. */
  private called(common: CommonOptions): ModuleReference {
    return { ...(this.shared ?? this.module), ...(common.args !== undefined ? { args: common.args } : {}), ...(this.layer !== undefined ? { layer: this.layer } : {}) };
  }

  /**
   * Stage mode: runs the function once per file under `stageLocation` matching `filePattern`.
   * Everything is checked before any work starts; the returned run is already executing.
   *
   * @example
   * ```ts
   * const run = await dpf.runFromStage({ stageLocation: './input', runId: 'files', filePattern: '*.parquet' });
   * const failed = (await run.getProgress()).FAILED.map((details) => details.partitionId);
   * await dpf.runFromStage({ stageLocation: './input', runId: 'files', partitionIds: failed, onExistingArtifacts: 'resume' });
   * ```
   */
  async runFromStage(options: StageRunOptions): Promise<DPFRun> {
    const checked = checkOptionsObject(options, 'runFromStage options', STAGE_RUN_KEYS);
    const common = checkCommonOptions(checked, 'file paths relative to stageLocation');
    const filePattern = checked.filePattern === undefined ? '*.parquet' : checkString(checked.filePattern, 'filePattern');
    await this.checkFunction();
    await checkSessionDatabase(this.session);
    await this.prepareQueue();
    const stage = await this.openStage();
    await checkRunCanStart(stage, common.runId, common.onExistingArtifacts);
    const { location, partitions } = await planStagePartitions({
      stageLocation: checked.stageLocation as string | URL,
      filePattern,
      partitionIds: common.partitionIds,
      stageFolder: this.stageLocation,
      encoding: { caseInsensitive: stage.caseInsensitive },
    });
    return this.start(this.request(common, stage, { mode: 'stage', location, filePattern }, true, partitions));
  }

  /**
   * DataFrame mode: runs the function once per distinct value of `partitionBy` in `source`. The
   * source is read once, sorted by the key, and written to the run's input on the stage; each
   * worker reads exactly its partition's rows from there. Everything is checked before any work
   * starts; the returned run is already executing.
   *
   * @example
   * ```ts
   * const run = await dpf.run({ partitionBy: 'origin', source: "SELECT * FROM 'flights.parquet'", runId: 'by-airport' });
   * console.log(await run.wait());
   * ```
   */
  async run(options: DataFrameRunOptions): Promise<DPFRun> {
    const checked = checkOptionsObject(options, 'run options', DATAFRAME_RUN_KEYS);
    const common = checkCommonOptions(checked, 'partition ids');
    const partitionBy = checkColumns(checked.partitionBy, 'partitionBy', 'a column name, or a non-empty list of column names for a composite key');
    const orderBy = checked.orderBy === undefined ? [] : checkColumns(checked.orderBy, 'orderBy', "a column name such as 'day' or 'amount DESC', or a list of them");
    const columns = checked.columns === undefined ? undefined : checkColumns(checked.columns, 'columns', "a column name such as 'amount', or a list of the columns the function reads");
    const database = checked.database === undefined ? undefined : checkDatabaseFile(checked.database);
    if (this.queue === undefined) prewarmWorkers(common.executionOptions);
    await this.checkFunction();
    await checkSessionDatabase(this.session);
    await this.prepareQueue();
    const stage = await this.openStage();
    const layout = new RunLayout(common.runId);

    const existing = common.onExistingArtifacts === 'resume' ? await readRunSpec(stage, layout) : undefined;
    if (existing !== undefined) {
      const follower = await RunFollower.load(stage, layout, existing);
      // What was asked must be what the run was planned with: a resume never quietly uses another partitionBy, source or function.
      const asked = checked.source === undefined ? undefined : describeSource(checkSource(checked.source, database));
      checkResumeMatches(existing, follower.state.start?.module, { mode: 'dataframe', partitionBy, source: asked ?? (existing.input as DataFrameInput).source, rows: 0, ...(columns !== undefined ? { columns } : {}) }, this.called(common));
      // A DataFrame run: checkResumeMatches refused any other.
      const planned = existing.input as DataFrameInput;
      const stored = follower.partitions;
      const partitions = common.partitionIds === undefined ? stored : choosePartitions(stored, common.partitionIds);
      const resume = { ...this.request(common, stage, planned, existing.folderEncoding.keepSlashes, partitions), folderEncoding: existing.folderEncoding, onExistingArtifacts: 'resume' as const };
      // Resuming continues the planned input; the source is not read again — unless the input was
      // not fully written (its driver died while writing it): then the source is read again to
      // write it, provided it still gives the same partitions.
      if ((await readInputManifest(stage, layout.inputFolder(follower.state.start?.input ?? 1)))?.complete === true) return this.start(resume);
      if (checked.source === undefined) {
        throw new InvalidOptionError('source', `run "${common.runId}" stopped before its input was fully written: give the source again to write it and resume, or run it again with onExistingArtifacts: 'overwrite'`);
      }
      const { planDataFramePartitions } = await import('./plan/dataframe-partitions.js');
      // The columns it was planned with, whether the resume names them again or not.
      const plan = await planDataFramePartitions({ source: checkSource(checked.source, database), partitionBy, orderBy, columns: planned.columns, database, partitionIds: undefined, caseInsensitive: stage.caseInsensitive });
      try {
        const same = plan.partitions.length === stored.length && plan.partitions.every((partition, i) => partition.id === stored[i]!.id && partition.size === stored[i]!.size);
        if (!same) {
          throw new InvalidOptionError('source', `run "${common.runId}" stopped before its input was fully written, and the source now gives other partitions than it planned; run it again with onExistingArtifacts: 'overwrite'`);
        }
        return await this.start({ ...resume, rows: plan.input });
      } catch (error) {
        await plan.input.dispose();
        throw error;
      }
    }

    await checkRunCanStart(stage, common.runId, common.onExistingArtifacts);
    if (checked.source === undefined) throw new InvalidOptionError('source', 'is required to plan a new run; give SQL text, a table name, an Arrow table, records or { postgres, query }');
    const source = checkSource(checked.source, database);
    const { planDataFramePartitions } = await import('./plan/dataframe-partitions.js');
    const plan = await planDataFramePartitions({ source, partitionBy, orderBy, columns, database, partitionIds: common.partitionIds, caseInsensitive: stage.caseInsensitive });
    try {
      const input = { mode: 'dataframe' as const, partitionBy: plan.partitionBy, source: describeSource(source), rows: plan.rows, ...(plan.columns !== undefined ? { columns: plan.columns } : {}) };
      return await this.start({ ...this.request(common, stage, input, plan.partitionBy.length > 1, plan.partitions), rows: plan.input });
    } catch (error) {
      await plan.input.dispose();
      throw error;
    }
  }

  private request(common: CommonOptions, stage: Stage, input: RunSpec['input'], keepSlashes: boolean, partitions: RunRequest['partitions']): RunRequest {
    return {
      stage,
      runId: common.runId,
      input,
      folderEncoding: { keepSlashes, caseInsensitive: stage.caseInsensitive },
      module: this.called(common),
      options: common.executionOptions,
      session: this.session,
      partitions,
      onExistingArtifacts: common.onExistingArtifacts,
      ...(this.queue !== undefined ? { queue: { ...this.queue, role: 'submit' as const } } : {}),
    };
  }

  /**
   * Queue runs: checks the queue answers and records the module as workers find it (its path in
   * the project and its content hash), before any work starts.
   */
  private async prepareQueue(): Promise<void> {
    if (this.queue === undefined) return;
    const { checkQueueReachable } = await import('./execute/queue/redis-connection.js');
    await checkQueueReachable(this.queue.url);
    this.shared = { ...this.module, shared: await shareModule(this.module) };
  }

  /** Starts the run; a queue run with useHeadNode has this process work on it too. */
  private async start(request: RunRequest): Promise<DPFRun> {
    const run = await startRun(request);
    if (this.queue === undefined || !request.options.useHeadNode) return run;
    const { joinHeadWorker } = await import('./execute/queue/head-worker.js');
    await joinHeadWorker(this.queue, run, request.options, this.module);
    return run;
  }

  private async openStage(): Promise<Stage> {
    return (await openStage(this.stageLocation, { create: true }))!;
  }

  /** Imports the module once in this process, so a missing export fails here and not in every worker. */
  private checkFunction(): Promise<PartitionFunction> {
    this.loaded ??= loadPartitionFunction(this.module);
    this.loaded.catch(() => (this.loaded = undefined));
    return this.loaded;
  }
}

interface CommonOptions {
  runId: string;
  args: JsonValue | undefined;
  onExistingArtifacts: OnExistingArtifacts;
  partitionIds: readonly string[] | undefined;
  executionOptions: ReturnType<typeof resolveExecutionOptions>;
}

/** The options both modes share. */
function checkCommonOptions(checked: Record<string, unknown>, idsAre: string): CommonOptions {
  const runId = checkRunId(checked.runId);
  const onExistingArtifacts =
    checked.onExistingArtifacts === undefined ? 'error' : checkOneOf(checked.onExistingArtifacts, 'onExistingArtifacts', ['error', 'overwrite', 'resume'] as const);
  const partitionIds = checked.partitionIds;
  if (partitionIds !== undefined && (!Array.isArray(partitionIds) || !partitionIds.every((id) => typeof id === 'string'))) {
    throw new InvalidOptionError('partitionIds', `expected an array of ${idsAre}`);
  }
  return { runId, args: checkRunArgs(checked.args), onExistingArtifacts, partitionIds: partitionIds as readonly string[] | undefined, executionOptions: resolveExecutionOptions(checked.executionOptions) };
}

function checkColumns(value: unknown, option: string, expected: string): string[] {
  const columns = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(columns) || columns.length === 0 || !columns.every((column) => typeof column === 'string' && column.trim() !== '')) {
    throw new InvalidOptionError(option, `expected ${expected}`);
  }
  if (new Set(columns).size !== columns.length) throw new InvalidOptionError(option, `lists a column twice: ${columns.join(', ')}`);
  return columns as string[];
}

function checkDatabaseFile(value: unknown): string {
  const path = resolve(checkString(value, 'database'));
  if (!existsSync(path)) throw new InvalidOptionError('database', `${path} does not exist; give the DuckDB database file the source reads from`);
  return path;
}

function sessionTarget(value: unknown, stage: string, queue: boolean): SessionTarget {
  // A queue run's partitions run on many machines, and a DuckDB file has one writer: no default database.
  if (value === undefined) return isS3Location(stage) || queue ? { kind: 'none' } : { kind: 'duckdb', path: join(stage, 'dpf.duckdb'), inStage: true };
  const database = checkString(value, 'sessionDatabase');
  if (/^postgres(ql)?:\/\//.test(database)) return { kind: 'postgres', url: database };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(database)) {
    throw new InvalidOptionError('sessionDatabase', 'expected a DuckDB database file path or a postgres:// URL');
  }
  if (queue) {
    throw new InvalidOptionError(
      'sessionDatabase',
      `a queue run's partitions write from many machines at once, and a DuckDB file (${database}) has a single writer on one machine; use a postgres:// URL, or leave sessionDatabase out`,
    );
  }
  return { kind: 'duckdb', path: resolve(database) };
}

function checkRunId(value: unknown): string {
  const runId = checkString(value, 'runId');
  if (!RUN_ID.test(runId)) {
    throw new InvalidOptionError(
      'runId',
      `"${runId}" cannot name a run folder: use letters, digits, ".", "_" and "-", starting with a letter or digit (at most 128 characters)`,
    );
  }
  return runId;
}
